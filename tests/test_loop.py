"""The RST training loop (`rstsweep.trainers.train`): exactness against hand-written loops, the
coin accounting, pass counts per branch, divergence, checkpoints and in-process resume.

Everything runs on tiny settings (fastcnn width 4, a few hundred Fashion-MNIST images, 1 thread).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from factories import crash_after_epoch, tiny_config
from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError
from rstsweep.schedules import parse
from rstsweep.trainers import loop as loop_module
from rstsweep.trainers import summary as summary_module
from rstsweep.trainers.augment import test_batches, train_batches
from rstsweep.trainers.checkpoint import (
    atomic_torch_save,
    capture_rng_state,
    load_checkpoint,
    remove_stale_temporaries,
    restore_rng_state,
)
from rstsweep.trainers.data import load_data
from rstsweep.trainers.models import build_model
from rstsweep.trainers.sam import disable_running_stats

torch.set_num_threads(1)

tiny = partial(tiny_config, test_subset=256, epochs=2, seed=3, lr=0.05)  # this file's cells


def final_weights(out_dir) -> dict[str, torch.Tensor]:
    return torch.load(out_dir / "final.pt", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def fresh_model_and_data(cfg: CellConfig):
    """The same model init and data as the trainer, built independently of the loop module."""
    data = load_data(
        cfg.dataset,
        train_subset=cfg.train_subset,
        test_subset=cfg.test_subset,
        seed=cfg.seed,
    )
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, data.in_channels, data.num_classes, width=cfg.width)
    return model, data


def hand_eval(model, data) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        x = torch.cat([b for b, _ in test_batches(data, 97)])
        out = model(x)
    return F.cross_entropy(out, data.test_labels).item(), (
        out.argmax(1) != data.test_labels
    ).float().mean().item()


# --------------------------------------------------------------------------- exactness
def test_p0_is_plain_sgd_bit_for_bit(tmp_path):
    """constant(0) with algorithm sam never takes the SA branch: identical to torch.optim.SGD
    (with label smoothing in the training loss, none in the test loss)."""
    cfg = tiny(
        algorithm="sam",
        schedule="constant(0)",
        lr_schedule="constant",
        grad_clip=None,
        label_smoothing=0.1,
    )
    result = loop_module.train(cfg, out_dir=tmp_path)
    assert result.status == "ok" and result.sa_steps == 0 and not result.draws.any()

    model, data = fresh_model_and_data(cfg)
    sgd = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    model.train()
    for epoch in range(cfg.epochs):
        for x, y in train_batches(data, cfg.batch_size, cfg.augment, cfg.seed, epoch):
            sgd.zero_grad()
            F.cross_entropy(model(x), y, label_smoothing=0.1).backward()
            sgd.step()
    assert_same_weights(final_weights(tmp_path), model.state_dict())
    test_loss, test_error = hand_eval(model, data)
    assert result.test_error == pytest.approx(test_error, abs=1e-9)
    assert result.test_loss == pytest.approx(test_loss, rel=1e-5)


def test_p1_is_sam_bit_for_bit(tmp_path):
    """constant(1) takes SAM at every step: identical to a loop calling first/second_step by hand
    (same optimizer class and clipping), and close to a from-scratch SAM in plain torch."""
    from rstsweep.trainers.optim import build_optimizer

    cfg = tiny(algorithm="sam", schedule="constant(1)", lr_schedule="constant", grad_clip=None)
    result = loop_module.train(cfg, out_dir=tmp_path)
    assert result.sa_steps == result.steps == 8

    model, data = fresh_model_and_data(cfg)
    opt = build_optimizer(model.parameters(), cfg)
    model.train()
    for epoch in range(cfg.epochs):
        for x, y in train_batches(data, cfg.batch_size, cfg.augment, cfg.seed, epoch):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.first_step(zero_grad=True)
            with disable_running_stats(model):
                F.cross_entropy(model(x), y).backward()
            opt.second_step(zero_grad=True)
    assert_same_weights(final_weights(tmp_path), model.state_dict())

    # An independent SAM (Foret et al.) in a few lines of plain torch, over one epoch (float
    # rounding differences get amplified chaotically after ~5 steps of this tiny net).
    cfg = cfg.model_copy(update={"epochs": 1})
    result = loop_module.train(cfg, out_dir=tmp_path)
    model, data = fresh_model_and_data(cfg)
    params = list(model.parameters())
    sgd = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    model.train()
    for epoch in range(cfg.epochs):
        for x, y in train_batches(data, cfg.batch_size, cfg.augment, cfg.seed, epoch):
            sgd.zero_grad()
            F.cross_entropy(model(x), y).backward()
            with torch.no_grad():
                norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params))
                eps = [(cfg.rho * p.grad / (norm + 1e-12)).float() for p in params]
                for p, e in zip(params, eps, strict=True):
                    p.add_(e)
            bn_stats = ("running_mean", "running_var", "num_batches_tracked")
            running = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(bn_stats)}
            sgd.zero_grad()
            F.cross_entropy(model(x), y).backward()
            with torch.no_grad():
                for p, e in zip(params, eps, strict=True):
                    p.sub_(e)
            model.load_state_dict(running, strict=False)  # BN statistics of the first pass
            sgd.step()
    trained = final_weights(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.allclose(trained[key].double(), value.double(), atol=1e-5, rtol=0), key


# --------------------------------------------------------------------------- accounting
def count_train_forwards(monkeypatch) -> list[int]:
    """Patch build_model so every training-mode forward appends its batch size to a list."""
    sizes: list[int] = []
    original = build_model

    def counting_build_model(*args, **kwargs):
        model = original(*args, **kwargs)
        model.register_forward_pre_hook(
            lambda module, inputs: sizes.append(inputs[0].shape[0]) if module.training else None
        )
        return model

    monkeypatch.setattr("rstsweep.trainers.run.build_model", counting_build_model)
    return sizes


def test_coin_accounting_and_pass_counts(monkeypatch):
    """constant(0.5): draws are the schedule's, realized Δη within binomial noise, one forward pass
    per base step and two per SA step, branch times and per-epoch records consistent."""
    sizes = count_train_forwards(monkeypatch)
    cfg = tiny(schedule="constant(0.5)", train_subset=512, batch_size=16, epochs=2, seed=5)
    records = []
    result = loop_module.train(cfg, on_epoch=records.append)
    T = 512 // 16 * 2
    assert result.status == "ok" and result.error is None
    assert result.steps == T and len(result.draws) == T
    np.testing.assert_array_equal(result.draws, parse("constant(0.5)").draws(T, cfg.seed))
    assert result.sa_steps == int(result.draws.sum())
    assert result.realized_extra == result.sa_steps / T
    assert abs(result.realized_extra - 0.5) <= 3 * math.sqrt(0.25 / T)
    assert result.expected_extra == pytest.approx(0.5) and result.closed_form_extra == 0.5
    assert len(sizes) == result.steps + result.sa_steps  # genuine one-pass base steps

    assert [r.epoch for r in records] == [1, 2] and records == result.epochs
    half = T // 2
    assert records[0].steps == half and records[1].steps == T
    assert records[0].sa_steps == int(result.draws[:half].sum())
    assert records[1].time_s == result.train_time_s > records[0].time_s > 0
    assert result.sgd_step_s > 0 and result.sa_step_s > result.sgd_step_s
    step_total = (T - result.sa_steps) * result.sgd_step_s + result.sa_steps * result.sa_step_s
    assert step_total <= result.train_time_s
    assert result.test_error == records[-1].test_error and 0 <= result.test_error <= 1
    assert result.train_loss == records[-1].train_loss and math.isfinite(result.train_loss)


def test_sgd_algorithm_and_lookSAM_and_esam_pass_counts(monkeypatch):
    sizes = count_train_forwards(monkeypatch)
    result = loop_module.train(tiny(algorithm="sgd", epochs=1))
    assert result.sa_steps == 0 and result.sa_step_s is None and len(sizes) == result.steps == 4

    # LookSAM(k=2) at p = 1: full SAM steps 1, 3, 5, 7 (two passes), reuse steps one pass.
    sizes.clear()
    result = loop_module.train(tiny(algorithm="looksam", schedule="constant(1)", looksam_k=2))
    assert result.status == "ok" and result.sa_steps == 8
    assert len(sizes) == 8 + 4

    # ESAM's SDS: a no-grad ranking pass on the batch, then the second pass on ⌊γB⌋ samples.
    sizes.clear()
    result = loop_module.train(tiny(algorithm="esam", schedule="constant(1)", esam_gamma=0.25))
    assert result.status == "ok"
    assert sizes == [64, 64, 16] * 8


def test_divergence_is_reported_quickly():
    cfg = tiny(lr=1e12, grad_clip=None, epochs=20, lr_schedule="constant", weight_decay=0.0)
    result = loop_module.train(cfg)
    assert result.status == "diverged"
    assert "epoch 1" in result.error
    assert len(result.epochs) == 1 and result.steps == 4
    assert not math.isfinite(result.train_loss)


# --------------------------------------------------------------------------- checkpoints
def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    """A crash right after epoch 1's checkpoint, then resume: same weights, metrics and draws."""
    cfg = tiny(schedule="constant(0.5)", epochs=3, algorithm="looksam", looksam_k=2)
    straight = loop_module.train(cfg, out_dir=tmp_path / "straight")

    crash_after_epoch(loop_module.train, cfg, tmp_path / "resumed")
    state = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert state["epoch"] == 1
    acc = state["accounting"]  # first step of each branch kept apart as warm-up
    assert acc["base_count"] + acc["warmup_base_count"] == acc["steps"] - acc["sa_steps"]
    assert acc["sa_count"] + acc["warmup_sa_count"] == acc["sa_steps"] > 0
    assert acc["warmup_base_count"] == 1 and acc["warmup_sa_count"] == 1
    # Disturb every global RNG in between: the checkpoint must restore them.
    torch.rand(7), np.random.rand(3)
    resumed = loop_module.train(cfg, out_dir=tmp_path / "resumed", resume=True)

    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed"))
    for field in ("steps", "sa_steps", "test_loss", "test_error", "train_loss", "train_error"):
        assert getattr(resumed, field) == getattr(straight, field), field
    np.testing.assert_array_equal(resumed.draws, straight.draws)
    strip = [dict(vars(r), time_s=0) for r in straight.epochs]
    assert [dict(vars(r), time_s=0) for r in resumed.epochs] == strip

    # Resuming a finished run trains nothing and returns the same result.
    again = loop_module.train(cfg, out_dir=tmp_path / "resumed", resume=True)
    assert again.test_loss == straight.test_loss and again.train_time_s == resumed.train_time_s


def test_resume_rejects_a_checkpoint_of_another_cell(tmp_path):
    loop_module.train(tiny(epochs=1), out_dir=tmp_path)
    with pytest.raises(RstError, match="belongs to cell"):
        loop_module.train(tiny(epochs=1, rho=0.1), out_dir=tmp_path, resume=True)


def test_atomic_save_and_rng_round_trip(tmp_path):
    path = tmp_path / "sub" / "ck.pt"
    atomic_torch_save({"w": torch.arange(5), "rng": capture_rng_state()}, path)
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temporary left behind
    state = load_checkpoint(path)
    assert torch.equal(state["w"], torch.arange(5))
    expected = (torch.rand(3), np.random.rand(3), __import__("random").random())
    restore_rng_state(state["rng"])
    again = (torch.rand(3), np.random.rand(3), __import__("random").random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("writer died mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        atomic_torch_save({"epoch": 2, "junk": Unpicklable()}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]

    stale = tmp_path / ".tmp-checkpoint.pt-dead"  # what a SIGKILLed writer leaves behind
    stale.write_bytes(b"half")
    remove_stale_temporaries(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_result_summary_is_json_safe():
    result = loop_module.train(tiny(lr=1e12, grad_clip=None, lr_schedule="constant", epochs=1))
    summary = summary_module.result_summary(result)
    assert summary["status"] == "diverged" and summary["train_loss"] is None
    assert "epochs" not in summary and "draws" not in summary
    assert summary["realized_extra"] == result.sa_steps / result.steps
