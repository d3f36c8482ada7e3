"""Pass accounting against hand counts: `sa_fraction` = ΣX_t/T and `realized_extra` = extra
pass units run per step (rstsweep.core.passes) for LookSAM (k = 1, 3, 5) and ESAM (β, γ); the
planner's estimate from the same model; warm-up SGD coins; mixup's batches; old stores' rows.
Tiny settings: fastcnn width 4 on 320 Fashion-MNIST images, 1 thread."""

from __future__ import annotations

import json
import math
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from factories import tiny_config
from rstsweep.core.config import CellConfig
from rstsweep.core.passes import FORWARD, WEIGHT_GRAD, expected_sa_extra
from rstsweep.store import schema
from rstsweep.store.rows import trial_row
from rstsweep.store.store import Store
from rstsweep.sweeper.plan import sa_step_cost
from rstsweep.trainers.augment import mixup_batches
from rstsweep.trainers.loop import train
from rstsweep.trainers.models import build_model

torch.set_num_threads(1)
tiny = partial(
    tiny_config, train_subset=320, test_subset=64, batch_size=32, epochs=2, seed=4, lr=0.05
)  # this file's cells
STEPS = 20  # 320 / 32 per epoch, 2 epochs


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("schedule", ["constant(1)", "constant(0.5)"])
def test_looksam_counts_its_full_steps_only(k: int, schedule: str) -> None:
    result = train(tiny(algorithm="looksam", looksam_k=k, schedule=schedule))
    n = int(result.draws.sum())
    full = math.ceil(n / k)  # the 1st, (k+1)th, (2k+1)th ... SA steps run the second pass
    assert result.steps == STEPS and result.sa_fraction == n / STEPS
    assert result.realized_extra == pytest.approx(full / STEPS, abs=1e-12)
    if schedule == "constant(1)" and k == 5:
        assert result.sa_fraction == 1.0 and result.realized_extra == pytest.approx(0.2)


def esam_hand_count(config: CellConfig, draws: np.ndarray) -> float:
    """Σ over SA steps: γ-subset second pass + ranking forward − skipped weight gradients, the
    tensors chosen by torch.rand(n) < β from Generator(seed) after every SA step."""
    model = build_model("fastcnn", 1, 10, width=4, image_size=28)
    sizes = np.array([p.numel() for p in model.parameters()])
    gen = torch.Generator().manual_seed(config.seed)
    chosen = np.ones(len(sizes), dtype=bool)
    k = max(1, int(config.esam_gamma * config.batch_size))
    if config.esam_gamma >= 0.99:  # the reference (dydjw9/Efficient_SAM) keeps every sample
        k = config.batch_size
    total = 0.0
    for _ in range(int(draws.sum())):
        total += k / config.batch_size + (1 / 3 if k < config.batch_size else 0.0)
        total -= (1 / 3) * sizes[~chosen].sum() / sizes.sum()
        u = torch.rand(len(sizes), generator=gen)
        chosen = (u < config.esam_beta).numpy()
        if not chosen.any():
            chosen[int(u.argmin())] = True
    return total


@pytest.mark.parametrize(
    ("beta", "gamma"), [(1.0, 1.0), (1.0, 0.995), (1.0, 0.5), (0.5, 0.5), (0.3, 0.25)]
)
def test_esam_counts_partial_passes(beta: float, gamma: float) -> None:
    config = tiny(algorithm="esam", esam_beta=beta, esam_gamma=gamma, schedule="constant(0.6)")
    result = train(config)
    assert result.sa_fraction == result.draws.sum() / STEPS
    assert result.extra_passes == pytest.approx(esam_hand_count(config, result.draws), abs=1e-9)
    if beta == 1.0 and gamma >= 0.99:  # plain SAM's cost
        assert result.realized_extra == pytest.approx(result.sa_fraction)
    else:
        assert result.realized_extra < result.sa_fraction
    assert result.first_pass_s is not None and result.first_pass_s < result.sa_step_s


def test_planner_uses_the_same_cost_model() -> None:
    assert pytest.approx(1 / 3) == FORWARD and pytest.approx(1 / 3) == WEIGHT_GRAD
    assert sa_step_cost(tiny(algorithm="looksam", looksam_k=5)) == pytest.approx(0.2)
    esam = tiny(algorithm="esam", esam_beta=0.5, esam_gamma=0.5)
    assert sa_step_cost(esam) == pytest.approx(0.5 + 1 / 3 - 0.5 / 3)
    keeps_all = tiny(algorithm="esam", esam_beta=1.0, esam_gamma=0.995)
    assert sa_step_cost(keeps_all) == pytest.approx(1.0)  # no ranking, every sample
    assert expected_sa_extra(tiny(algorithm="gsam")) == 1.0


def test_warmup_sgd_forces_the_warmup_coins_to_zero() -> None:
    on = train(tiny(schedule="constant(1)", warmup_epochs=1, warmup_sgd=True, epochs=2))
    assert not on.draws[:10].any() and on.draws[10:].all() and on.sa_fraction == 0.5
    assert on.expected_extra == 0.5  # p = 1 on the 10 steps after warm-up, of 20
    off = train(tiny(schedule="constant(1)", warmup_epochs=1, epochs=2))
    assert off.draws.all()


def test_mixup_mixes_pairs_with_one_lambda_per_batch_deterministically() -> None:
    x = torch.randn(6, 1, 4, 4, dtype=torch.float32)
    y = torch.arange(6)
    batches = [(x, y), (x, y)]
    out = list(mixup_batches(iter(batches), 6, 0.4, seed=1, epoch=2))
    again = list(mixup_batches(iter(batches), 6, 0.4, seed=1, epoch=2))
    other = list(mixup_batches(iter(batches), 6, 0.4, seed=1, epoch=3))
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(out, again, strict=True)
    )
    assert not torch.equal(out[0][1], other[0][1])
    for xm, ym in out:  # λ ≥ ½ per batch, each sample mixed with its mirror in the batch
        lam = ym[0, 0].item()
        assert 0.5 <= lam <= 1.0
        for i in range(6):
            torch.testing.assert_close(xm[i], lam * x[i] + (1 - lam) * x[5 - i])
            want = torch.zeros(6)
            want[i] += lam
            want[5 - i] += 1 - lam
            torch.testing.assert_close(ym[i], want)
    assert out[0][1][0, 0] != out[1][1][0, 0]  # a fresh λ per batch


def test_mixup_trains_and_is_reproducible() -> None:
    a = train(tiny(mixup_alpha=1.0, epochs=1, algorithm="esam"))
    b = train(tiny(mixup_alpha=1.0, epochs=1, algorithm="esam"))
    assert a.status == "ok" and a.train_loss == b.train_loss and a.test_loss == b.test_loss


def test_old_rows_read_with_sa_fraction_from_their_realized_extra(tmp_path) -> None:
    class Cell:
        sweep, group, label, x = "s", "g", "l", None
        config = tiny(algorithm="looksam")
        cell_id = config.cell_id()

    result = train(tiny(algorithm="looksam", epochs=1))
    row = trial_row(Cell, result, "ci")
    old = {k: v for k, v in row.items() if k not in ("sa_fraction", "first_pass_s")}
    old["realized_extra"] = result.sa_fraction  # what the old code stored
    old_schema = pa.schema([f for f in schema.TRIALS if f.name in old])
    (tmp_path / "trials").mkdir()
    pq.write_table(
        pa.Table.from_pylist([old], schema=old_schema), tmp_path / "trials" / "part-a.parquet"
    )
    new = {**row, "cell_id": "other"}
    pq.write_table(
        pa.Table.from_pylist([new], schema=schema.TRIALS), tmp_path / "trials" / "part-b.parquet"
    )
    trials = Store(tmp_path, read_only=True).read("trials").set_index("cell_id")
    assert trials.loc[Cell.cell_id, "extra_from_coins"]
    assert trials.loc[Cell.cell_id, "sa_fraction"] == result.sa_fraction
    assert not trials.loc["other", "extra_from_coins"]
    assert trials.loc["other", "realized_extra"] == pytest.approx(result.realized_extra)
    assert trials.loc["other", "realized_extra"] < trials.loc["other", "sa_fraction"]


def _train_json(cli_main, *args: str) -> dict:
    tiny = {"width": 4, "train_subset": 320, "test_subset": 64, "batch_size": 32, "threads": 1}
    sets = [part for k, v in tiny.items() for part in ("--set", f"{k}={v}")]
    argv = ["train", "--model", "fastcnn", "--epochs", "1", "--device", "cpu", *sets]
    code, out, _ = cli_main(*argv, *args, "--json")
    assert not code
    return json.loads(out)


def test_cli_json_reports_both_fractions_and_the_first_pass(cli_main) -> None:
    summary = _train_json(cli_main, "--algorithm", "esam")
    assert summary["sa_fraction"] == 1.0 and summary["realized_extra"] < 1.0
    assert summary["first_pass_s"] is not None and summary["extra_passes"] > 0


def test_cli_looksam_k5_runs_a_fifth_of_the_extra_passes(cli_main) -> None:
    args = ("--algorithm", "looksam", "--set", "looksam_k=5", "--schedule", "constant(1)")
    summary = _train_json(cli_main, *args)
    # 10 SA steps, every 5th a full SAM step (t = 0, 5): 2 extra passes over 10 steps
    assert summary["steps"] == 10 and summary["sa_fraction"] == 1.0
    assert summary["realized_extra"] == pytest.approx(0.2)
