"""CellConfig -> SAM-family optimizer mapping and the per-step lr schedules (values by hand)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError
from rstsweep.trainers.optim import build_lr_scheduler, build_optimizer, lr_factor
from rstsweep.trainers.sam import SAM
from rstsweep.trainers.variants import ESAM, GSAM, LookSAM

torch.set_num_threads(1)


def params():
    return nn.Linear(3, 2).parameters()


COMMON = dict(rho=0.07, alpha=1.3, grad_clip=2.5, lr=0.05, momentum=0.8, weight_decay=1e-3)


@pytest.mark.parametrize(
    ("algorithm", "cls", "expected"),
    [
        ("sgd", SAM, dict(adaptive=False, mask_fraction=1.0)),
        ("sam", SAM, dict(adaptive=False, mask_fraction=1.0)),
        ("gnr", SAM, dict(adaptive=False, mask_fraction=1.0)),
        (
            "asam",
            SAM,
            dict(adaptive=True, eta=0.02, mask_fraction=1.0, adaptive_variant="official"),
        ),
        ("gsam", GSAM, dict(gsam_alpha=0.3, mask_fraction=1.0, rho_schedule="lr", rho_min=0.0)),
        ("looksam", LookSAM, dict(k=4, looksam_alpha=0.6, mask_fraction=1.0)),
        # ESAM's weight perturbation is by tensor (beta), not the per-entry mask
        ("esam", ESAM, dict(mask_fraction=1.0, beta=0.6, sample_fraction=0.5)),
        ("ssam", SAM, dict(mask_fraction=0.4, mask_kind="fisher", mask_seed=11)),
    ],
)
def test_build_optimizer_maps_every_algorithm(algorithm, cls, expected):
    config = CellConfig(
        algorithm=algorithm,
        asam_eta=0.02,
        gsam_alpha=0.3,
        looksam_k=4,
        looksam_alpha=0.6,
        mask_fraction=0.4,
        mask_kind="fisher",
        esam_beta=0.6,
        seed=11,
        **COMMON,
    )
    opt = build_optimizer(params(), config)
    assert type(opt) is cls
    for key, value in expected.items():
        assert getattr(opt, key) == value, key
    assert opt.alpha == 1.3 and opt.max_grad_norm == 2.5
    assert opt.param_groups[0]["rho"] == 0.07
    base = opt.base_optimizer
    assert type(base) is torch.optim.SGD
    group = base.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.05,
        0.8,
        True,
        1e-3,
    )
    assert opt.param_groups is base.param_groups


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_adam_bases(name, cls):
    opt = build_optimizer(params(), CellConfig(optimizer=name, lr=3e-4, weight_decay=0.05))
    assert type(opt.base_optimizer) is cls
    group = opt.base_optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (3e-4, 0.05)


def test_no_clip_and_nesterov_needs_momentum():
    assert build_optimizer(params(), CellConfig(grad_clip=None)).max_grad_norm is None
    nesterov_off = build_optimizer(params(), CellConfig(momentum=0.0, nesterov=False))
    assert nesterov_off.base_optimizer.param_groups[0]["nesterov"] is False
    with pytest.raises(RstError, match="nesterov"):
        build_optimizer(params(), CellConfig(momentum=0.0, nesterov=True))


def lrs(config: CellConfig, steps_per_epoch: int, n: int) -> list[float]:
    """The lr the optimizer uses at steps 0..n-1 (scheduler stepped once per training step)."""
    opt = build_optimizer(params(), config)
    sched = build_lr_scheduler(opt, config, steps_per_epoch)
    out = []
    for _ in range(n):
        out.append(opt.base_optimizer.param_groups[0]["lr"])
        opt.base_step()  # no grads: the base optimizer skips every param, the lr counter advances
        sched.step()
    return out


def test_cosine_schedule_values():
    got = lrs(CellConfig(lr=0.1, epochs=2, lr_schedule="cosine"), steps_per_epoch=5, n=10)
    # T = 10: lr_t = 0.1 · ½(1 + cos(π t / 10))
    assert got[0] == pytest.approx(0.1)
    assert got[5] == pytest.approx(0.05)
    assert got[9] == pytest.approx(0.05 * (1 + math.cos(0.9 * math.pi)))
    assert got[2] == pytest.approx(0.05 * (1 + math.cos(0.2 * math.pi)))


def test_cosine_with_warmup_values():
    config = CellConfig(lr=0.2, epochs=3, warmup_epochs=1, lr_schedule="cosine")
    got = lrs(config, steps_per_epoch=4, n=12)
    # W = 4 warmup steps: 0.2·(t+1)/4; then cosine over the 8 remaining steps
    assert got[:4] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert got[4] == pytest.approx(0.2)
    assert got[8] == pytest.approx(0.1)  # half way through the cosine part
    assert got[11] == pytest.approx(0.1 * (1 + math.cos(7 / 8 * math.pi)))


def test_step_schedule_values():
    config = CellConfig(lr=0.1, epochs=10, lr_schedule="step")
    # T = 100; ×0.2 at steps 30, 60, 80
    factors = [lr_factor(t, config, 10) for t in (0, 29, 30, 59, 60, 79, 80, 99)]
    assert factors == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.04, 0.008, 0.008])
    got = lrs(config, steps_per_epoch=10, n=31)
    assert got[29] == pytest.approx(0.1) and got[30] == pytest.approx(0.02)


def test_constant_schedule_and_bad_steps_per_epoch():
    config = CellConfig(lr=0.3, epochs=2, lr_schedule="constant")
    assert lrs(config, steps_per_epoch=3, n=6) == pytest.approx([0.3] * 6)
    with pytest.raises(RstError, match="steps_per_epoch"):
        build_lr_scheduler(build_optimizer(params(), config), config, 0)


def test_scheduler_state_round_trip():
    config = CellConfig(lr=0.1, epochs=2, lr_schedule="cosine")
    opt = build_optimizer(params(), config)
    sched = build_lr_scheduler(opt, config, 5)
    for _ in range(3):
        opt.base_step()
        sched.step()
    opt2 = build_optimizer(params(), config)
    sched2 = build_lr_scheduler(opt2, config, 5)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    opt2.base_step()
    sched2.step()
    assert opt2.base_optimizer.param_groups[0]["lr"] == pytest.approx(
        0.05 * (1 + math.cos(0.4 * math.pi))
    )


def test_authors_switches_reach_the_optimizer():
    config = CellConfig(
        weight_decay=1e-3, weight_decay_in_loss=True, norm_perturbations=True, base_grad_clip=2.0
    )
    opt = build_optimizer(params(), config)
    assert opt.l2 == 1e-3 and opt.base_optimizer.param_groups[0]["weight_decay"] == 0.0
    assert opt.norm_perturbations and opt.base_clip == 2.0 and opt.max_grad_norm == 5.0
    plain = build_optimizer(params(), CellConfig(weight_decay=1e-3))
    assert plain.l2 == 0.0 and plain.base_optimizer.param_groups[0]["weight_decay"] == 1e-3
    assert not plain.norm_perturbations and plain.base_clip is None
