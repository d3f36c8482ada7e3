"""Loss scaling for fp16 training, around the one- and two-pass steps of the SAM family.

float16 has a narrow range (max 65504, smallest normal 6.1e-5), so fp16 gradients are computed
for the loss times a scale S and divided by S in fp32 before anything reads them
(Micikevicius et al. 2018, "Mixed Precision Training"); `torch.amp.GradScaler` keeps S dynamic:
halved after a step whose gradients overflowed (inf/NaN), doubled after `growth_interval` clean
steps. bf16 and fp32 need none of this: `LossScaling` is then a no-op costing nothing.

With a sharpness-aware step both passes are scaled and checked (the order of the SAM fp16 recipe):

    scale -> backward -> unscale -> [overflow? skip]  -> norm, perturb θ -> θ+ε
          -> scaled second backward -> unscale -> [overflow? restore θ, skip] -> clip -> step

A skipped step leaves θ and the optimizer state exactly as before it (a second-pass overflow
puts θ back from the copy `first_step` kept), lowers S once, and is counted in `skipped_steps`.

GradScaler allows one `unscale_` per optimizer between two `update()`s; the second pass is
unscaled through `_SecondPass`, a stand-in that shares the optimizer's parameter groups, so both
passes' overflow checks feed the one `update()` of the step. Whether a pass overflowed is read
from the per-optimizer record GradScaler keeps for its own `step()` (`_per_optimizer_states`):
that is the one place the decision exists, and reading it (a host sync) is what
`GradScaler.step` does too.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _SecondPass:
    """What `GradScaler.unscale_` needs of an optimizer (its param_groups), for the second pass."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    @property
    def param_groups(self) -> list[dict[str, object]]:
        return self.optimizer.param_groups


class LossScaling:
    """The loss-scaling hooks `train_step` calls; active for fp16 only.

    `init_scale` etc. are GradScaler's (defaults: 2**16, x2 every 2000 clean steps, x0.5 on
    overflow). On the CPU, GradScaler works as on CUDA (torch >= 2.3)."""

    def __init__(
        self,
        precision: str,
        device: torch.device,
        optimizer: torch.optim.Optimizer,
        init_scale: float = 2.0**16,
        growth_interval: int = 2000,
    ) -> None:
        self.enabled = precision == "fp16"
        self.optimizer = optimizer
        self.skipped_steps = 0
        self.scaler: torch.amp.GradScaler | None = None
        self._second = _SecondPass(optimizer)
        if self.enabled:
            self.scaler = torch.amp.GradScaler(
                device.type, init_scale=init_scale, growth_interval=growth_interval
            )

    @property
    def scale(self) -> float:
        """The current loss scale S (1.0 when scaling is off)."""
        return float(self.scaler.get_scale()) if self.scaler is not None else 1.0

    def backward(self, loss: Tensor) -> None:
        """Backward of S·loss (plain `loss.backward()` without scaling)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale_finite(self, second_pass: bool = False) -> bool:
        """Divide the current .grad by S; True if all of them are finite (always True when off)."""
        if self.scaler is None:
            return True
        target = self._second if second_pass else self.optimizer
        self.scaler.unscale_(target)  # type: ignore[arg-type]
        found = self.scaler._per_optimizer_states[id(target)]["found_inf_per_device"]
        return not any(bool(v.item()) for v in found.values())

    def stepped(self) -> None:
        """The step's update was applied: let S grow (after growth_interval clean steps)."""
        if self.scaler is not None:
            self.scaler.update()

    def skipped(self) -> None:
        """The step overflowed and was skipped: drop its gradients, lower S, count it."""
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        # lr schedulers warn when the optimizer they wrap was not stepped; a skipped step is one
        # of the training steps all the same (its lr is used up, as with GradScaler.step).
        self.optimizer._opt_called = True  # type: ignore[attr-defined]
        self.scaler.update()  # type: ignore[union-attr]

    def state_dict(self) -> dict[str, object]:
        scaler = self.scaler.state_dict() if self.scaler is not None else None
        return {"scaler": scaler, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
