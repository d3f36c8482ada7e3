"""The measured cost model: the extra time of an SA step composed from timed step atoms (values
worked by hand), the trials' `extra_passes_model` / `extra_time_measured` columns (written, read
back, filled for old rows), the probe's atoms on a real cell, and the Pareto view's --cost."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from factories import make_cell, make_result
from rstsweep.core.passes import StepAtoms, sa_extra_time
from rstsweep.store.rows import atom_columns, atoms_of, cost_columns
from rstsweep.store.store import Store

ATOMS = StepAtoms(
    base_step=0.10,
    fb=0.08,
    vector=0.004,
    fraction=0.5,
    fb_fraction=0.05,
    rank_forward=0.03,
    beta=0.5,
    frozen_first_pass=0.07,
    reuse_vector=0.002,
)


def _cfg(algorithm: str, **kw) -> SimpleNamespace:
    base = dict(algorithm=algorithm, batch_size=128, looksam_k=5, esam_beta=0.5, esam_gamma=0.5)
    base["looksam_mode"] = "periodic"
    return SimpleNamespace(**{**base, **kw})


def test_sa_extra_time_worked_by_hand():
    # SAM: second pass 0.08 + vector 0.004 = 0.084 over a 0.10 base step
    assert sa_extra_time(_cfg("sam"), ATOMS) == pytest.approx(0.84)
    # LookSAM(5): (0.084 + 4 · 0.002) / 5 = 0.0184
    assert sa_extra_time(_cfg("looksam"), ATOMS) == pytest.approx(0.184)
    # ESAM(½, ½): half-batch pass 0.05 + ranking 0.03 + vector 0.004 − saving (0.08 − 0.07)
    assert sa_extra_time(_cfg("esam"), ATOMS) == pytest.approx(0.74)
    # γ = 1: nothing ranked, the full second pass
    assert sa_extra_time(_cfg("esam", esam_gamma=1.0), ATOMS) == pytest.approx(0.74 + 0.3 - 0.3)
    # β = 0.75: a quarter frozen saves half as much as the measured half
    assert sa_extra_time(_cfg("esam", esam_beta=0.75), ATOMS) == pytest.approx(0.79)


def test_fraction_interpolates_between_measured_points():
    assert ATOMS.fb_at(0.5) == 0.05 and ATOMS.fb_at(1.0) == 0.08
    assert ATOMS.fb_at(0.25) == pytest.approx(0.025)  # through (0, 0)
    assert ATOMS.fb_at(0.75) == pytest.approx(0.065)  # halfway from 0.05 to 0.08
    plain = StepAtoms(base_step=0.1, fb=0.08, vector=0.0)
    assert plain.fb_at(0.5) == pytest.approx(0.04)  # nothing measured below 1: proportional


def test_atoms_round_trip_through_probe_columns():
    row = SimpleNamespace(**atom_columns(vars(ATOMS)))
    assert row.atom_base_step_s == 0.10 and row.atom_fraction == 0.5
    assert atoms_of(row) == ATOMS
    assert atoms_of(SimpleNamespace()) is None  # a probe written before atoms were measured


def test_trainer_result_records_both_costs_and_the_store_reads_them_back(tmp_path):
    cell = make_cell("constant(0.5)")
    result = make_result(cell, steps=16)  # base step 0.1 s, SA step 0.2 s
    share = result.sa_steps / 16
    assert result.extra_time_measured == pytest.approx(share * (0.2 / 0.1 - 1))
    assert result.extra_passes_model == result.realized_extra
    store = Store(tmp_path)
    store.write_result(cell, result, profile="t")
    row = store.read("trials").iloc[0]
    assert row["extra_time_measured"] == pytest.approx(share)
    assert row["extra_passes_model"] == pytest.approx(result.realized_extra)
    assert row["realized_extra"] == pytest.approx(result.realized_extra)  # kept for old readers


def test_old_rows_and_sam_only_cells_are_filled_from_step_times():
    rows = pd.DataFrame(
        {
            "algorithm": ["sgd", "sam", "sam"],
            "model": "resnet18",
            "dataset": "cifar10",
            "batch_size": 128,
            "seed": [0, 0, 0],
            "realized_extra": [0.0, 1.0, 0.5],
            "sa_fraction": [0.0, 1.0, 0.5],
            "sgd_step_s": [0.10, np.nan, 0.12],
            "sa_step_s": [np.nan, 0.23, 0.24],
        }
    )
    filled = cost_columns(rows)  # no extra_* columns: an old store
    assert filled["extra_passes_model"].tolist() == [0.0, 1.0, 0.5]
    # SAM at every step: its base step is the SGD cell's 0.10 s; RST: its own 0.12 s
    assert filled["extra_time_measured"].tolist() == pytest.approx([0.0, 1.3, 0.5 * 1.0])


@pytest.mark.parametrize("algorithm", ["sam", "looksam", "esam"])
def test_probe_times_the_atoms_of_a_real_cell(algorithm):
    from rstsweep.core.config import CellConfig
    from rstsweep.trainers.probe import measure_steps

    kw = {"looksam": {"looksam_k": 3}, "esam": {"esam_beta": 0.5, "esam_gamma": 0.5}}
    config = CellConfig(
        model="fastcnn", dataset="fashion-mnist", width=4, batch_size=16, algorithm=algorithm,
        threads=1, **kw.get(algorithm, {}),
    )  # fmt: skip
    atoms = StepAtoms(**measure_steps(config, steps=3, warmup=1)["atoms"])
    assert atoms.base_step > 0 and atoms.fb > 0 and atoms.rank_forward > 0
    assert (atoms.reuse_vector is not None) == (algorithm == "looksam")
    assert (atoms.frozen_first_pass is not None) == (algorithm == "esam")
    assert (atoms.fraction, atoms.fb_fraction is not None) == (
        (0.5, True) if algorithm == "esam" else (1.0, False)
    )
    assert np.isfinite(sa_extra_time(config, atoms))


def test_plan_estimates_sa_time_from_probed_atoms_with_cost_time(tmp_path):
    from rstsweep.store.files import utc_now
    from rstsweep.sweeper.plan import cell_steps, cost_line, expected_extra, make_plan

    cell = make_cell("constant(0.5)")
    cfg = cell.config
    store = Store(tmp_path)
    store.write_probes(
        [
            {
                "model": cfg.model,
                "dataset": cfg.dataset,
                "algorithm": cfg.algorithm,
                "batch_size": cfg.batch_size,
                "width": cfg.width,
                "device": "cpu",
                "sgd_step_s": 0.10,
                "sa_step_s": 0.30,  # the FLOP model scales this: SAM's extra 1 pass = 0.20 s
                "steps": 5,
                "probed_at": utc_now(),
                **atom_columns(vars(ATOMS)),
            }
        ]
    )
    steps, share = cell_steps(cfg), expected_extra(cfg, cell_steps(cfg))
    flops = make_plan([cell], "constant", "t", store, device="cpu", cost="flops")
    timed = make_plan([cell], "constant", "t", store, device="cpu", cost="time")
    assert flops.total().pending_time_s == pytest.approx(steps * (0.10 + share * 0.20))
    extra = sa_extra_time(cfg, ATOMS)  # 0.84 base steps for SAM
    assert timed.total().pending_time_s == pytest.approx(steps * 0.10 * (1 + share * extra))
    assert timed.atom_cells == 1 and "1 of 1 pending cells" in cost_line(timed)
    assert cost_line(flops).startswith("cost: flops")
