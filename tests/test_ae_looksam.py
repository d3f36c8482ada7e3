"""AE-LookSAM (Jiang et al., ICLR 2023): LookSAM whose full SAM steps are the ones the policy picks,
with LookSAM's one-pass reuse step in place of the base step. The update against the independent
fp64 implementation of `test_fidelity.py` (base steps reuse the stored g_v once there is one), the
config's resolution (`--algorithm looksam --schedule aesam` is AE-LookSAM unless told
`looksam_mode: periodic`), its pass and time model, and a CLI run."""

from __future__ import annotations

import json

import pytest
import torch

from factories import tiny_fields
from rstsweep.core.config import CellConfig
from rstsweep.core.passes import StepAtoms, base_extra_time, expected_sa_extra, sa_extra_time
from rstsweep.trainers.variants import LookSAM
from test_fidelity import COINS, SGD, WD, Reference, make_batches, make_model, mix, run_ours


def ae_looksam(ref: Reference, rho: float, alpha_l: float, alpha: float, normalised: bool):
    """Every SA step full (storing g_v ⊥ g); every other step reuses g_v, once one is stored."""
    state = {"g_v": None}

    def reuse(g):
        return g + alpha_l * g.norm() / state["g_v"].norm() * state["g_v"]

    def base(theta, g):
        return g if state["g_v"] is None else mix(g, reuse(g), alpha, normalised)

    def update(theta, g, x, y, lr):
        u = ref.grad(theta + rho * g / g.norm(), x, y)
        state["g_v"] = u - (g @ u) / (g @ g) * g
        return mix(g, u, alpha, normalised)

    update.base = base
    return update


@pytest.mark.parametrize(
    ("alpha", "normalised"),
    [(1.0, False), (0.5, True), (2.0, False)],
    ids=["plain", "authors", "gnr"],
)
def test_policy_steps_are_full_and_base_steps_reuse_g_v(alpha: float, normalised: bool) -> None:
    model, batches = make_model(), make_batches()
    ref = Reference(model)
    update = ae_looksam(ref, 0.3, 0.7, alpha, normalised)
    opt = LookSAM(
        model.named_parameters(), torch.optim.SGD, rho=0.3, k=5, looksam_alpha=0.7, alpha=alpha,
        norm_perturbations=normalised, replace_base_steps=True, weight_decay=WD, **SGD,
    )  # fmt: skip
    ours = run_ours(model, opt, batches)
    for t, ((x, y), sa) in enumerate(zip(batches, COINS, strict=True)):
        want = ref.step(x, y, sa, update)
        torch.testing.assert_close(ours[t], want, rtol=0, atol=1e-10, msg=f"step {t}")
    # k plays no part: every SA step ran its second pass
    assert opt.take_extra_passes() == pytest.approx(sum(COINS))


def test_first_base_steps_before_any_full_step_are_plain_base_steps() -> None:
    model, batches = make_model(), make_batches()
    coins = [False, False, True, False, False, True, False]
    ref = Reference(model)
    update = ae_looksam(ref, 0.3, 0.7, 1.0, False)
    opt = LookSAM(
        model.named_parameters(), torch.optim.SGD, rho=0.3, replace_base_steps=True,
        weight_decay=WD, **SGD,
    )  # fmt: skip
    ours = run_ours(model, opt, batches, coins)
    for t, ((x, y), sa) in enumerate(zip(batches, coins, strict=True)):
        want = ref.step(x, y, sa, update)
        torch.testing.assert_close(ours[t], want, rtol=0, atol=1e-10, msg=f"step {t}")


def test_looksam_under_aesam_is_ae_looksam_unless_told_periodic() -> None:
    fields = tiny_fields(algorithm="looksam")
    ae = CellConfig(**{**fields, "schedule": "aesam"})
    assert ae.looksam_mode == "adaptive"
    assert CellConfig(**{**fields, "schedule": "aesam(l1=-1, l2=2)"}).looksam_mode == "adaptive"
    hybrid = CellConfig(**{**fields, "schedule": "aesam", "looksam_mode": "periodic"})
    assert hybrid.looksam_mode == "periodic" and hybrid.cell_id() != ae.cell_id()
    # other schedules keep periodic LookSAM, whose cell ids do not change with the new field
    for schedule in ("constant(0.5)", "budget(0.3)"):
        periodic = CellConfig(**{**fields, "schedule": schedule})
        assert periodic.looksam_mode == "periodic" and "looksam_mode" not in periodic.identity()
    # a dump reloads as itself
    assert CellConfig.model_validate_json(hybrid.model_dump_json()) == hybrid
    # the mode is no part of other algorithms' identity
    sam = CellConfig(**{**tiny_fields(), "schedule": "aesam"})
    assert "looksam_mode" not in sam.identity()


def test_pass_and_time_models_count_a_full_step_per_sa_step_and_reuse_on_the_others() -> None:
    ae = CellConfig(**tiny_fields(algorithm="looksam", schedule="aesam", looksam_k=5))
    periodic = ae.model_copy(update={"looksam_mode": "periodic"})
    assert expected_sa_extra(ae) == 1.0 and expected_sa_extra(periodic) == pytest.approx(0.2)
    atoms = StepAtoms(base_step=1.0, fb=0.9, vector=0.1, reuse_vector=0.05)
    assert sa_extra_time(ae, atoms) == pytest.approx(1.0)
    assert base_extra_time(ae, atoms) == pytest.approx(0.05)
    assert sa_extra_time(periodic, atoms) == pytest.approx((1.0 + 4 * 0.05) / 5)
    assert base_extra_time(periodic, atoms) == 0.0


def test_train_cli_runs_ae_looksam(cli) -> None:
    args = ["train", "--model", "fastcnn", "--dataset", "fashion-mnist", "--epochs", "2",
            "--seed", "1", "--device", "cpu", "--algorithm", "looksam", "--schedule", "aesam",
            "--json"]  # fmt: skip
    for kv in ("width=4", "train_subset=640", "test_subset=64", "batch_size=64", "threads=1"):
        args += ["--set", kv]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    fields = tiny_fields(algorithm="looksam", schedule="aesam", train_subset=640, seed=1)
    fields.update(test_subset=64, batch_size=64, epochs=2)
    assert summary["cell_id"] == CellConfig(**fields, looksam_mode="adaptive").cell_id()
    assert 0 < summary["sa_fraction"] < 1
    # one full second pass on each step the policy picked, none on the others
    assert summary["realized_extra"] == pytest.approx(summary["sa_fraction"])
