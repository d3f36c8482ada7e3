"""Paired differences over seeds: statistics against values worked by hand and against
scipy.stats.ttest_rel / scipy.stats.bootstrap, the seeds-needed power calculation against the
matched-pairs sample sizes of Cohen's tables (and a simulation), and the tables' paired columns
against a plain pandas per-seed merge of the raw Parquet rows."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rstsweep.analysis.paired import paired, power, seeds_needed
from rstsweep.analysis.tables import make_tables
from rstsweep.core.format import format_paired, format_seeds_needed
from rstsweep.testing.synthetic import small_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"


def test_three_seeds_worked_by_hand():
    # d = (1, 2, 3): mean 2, sd 1, se 1/√3. With 2 degrees of freedom Student's t has the closed
    # form F(t) = ½ + t / (2√(t² + 2)), so t_0.975 = 0.95·√(2 / (4·0.975·0.025)) and the
    # two-sided p of t = 2√3 is 1 − t/√(t² + 2).
    p = paired([1.0, 2.0, 3.0])
    t975 = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))
    assert t975 == pytest.approx(4.302653, abs=1e-6)
    assert (p.n, p.mean, p.sd, p.method) == (3, 2.0, 1.0, "t")
    assert p.lo == pytest.approx(2 - t975 / math.sqrt(3), rel=1e-12)  # −0.4841
    assert p.hi == pytest.approx(2 + t975 / math.sqrt(3), rel=1e-12)  # 4.4841
    t = 2 * math.sqrt(3)
    assert p.p == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-9)  # 0.0742
    assert not p.resolved  # the interval holds zero: three seeds do not settle it
    assert format_paired(p.mean, p.lo, p.hi) == "+2.00 [-0.48, +4.48]"


def test_resolved_interval_is_marked():
    p = paired([2.0, 2.5, 3.0, 2.2])
    assert p.lo > 0 and p.resolved
    assert format_paired(p.mean, p.lo, p.hi).endswith("]*")
    assert format_paired(-1.0, float("nan"), float("nan")) == "-1.00"  # one seed: no interval
    assert format_paired(float("nan"), 0, 1) == "—"


@pytest.mark.parametrize("n", [2, 3, 5, 9])
def test_interval_and_p_equal_scipy_ttest_rel(n):
    rng = np.random.default_rng(n)
    a, b = rng.normal(0.2, 0.02, n), rng.normal(0.21, 0.02, n)
    p = paired(a - b)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert p.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert (p.lo, p.hi) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert p.resolved == (ref.pvalue < 0.05)  # t-interval excludes 0 ⟺ paired t-test rejects


def test_ten_seeds_or_more_use_a_percentile_bootstrap():
    d = np.random.default_rng(1).normal(0.5, 1.0, 12)
    p = paired(d)
    assert p.method == "bootstrap" and p == paired(d)  # fixed generator: same table every time
    ref = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000, random_state=3)
    ci = ref.confidence_interval
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert abs(p.lo - ci.low) < 0.1 * se and abs(p.hi - ci.high) < 0.1 * se
    assert p.p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)  # the test stays the t-test


def test_nan_seeds_are_unpaired_and_small_samples_have_no_interval():
    p = paired([0.1, float("nan"), 0.3])
    assert p.n == 2 and p.mean == pytest.approx(0.2)
    one = paired([0.4])
    assert one.n == 1 and one.mean == 0.4 and math.isnan(one.lo) and math.isnan(one.seeds_needed)
    assert paired([]).n == 0 and math.isnan(paired([]).mean)


@pytest.mark.parametrize(("effect", "n"), [(0.5, 34), (0.8, 15), (1.0, 10), (0.2, 199)])
def test_seeds_needed_matches_matched_pairs_tables(effect, n):
    # matched-pairs t-test, two-sided α = 0.05, power 0.8 (Cohen 1988 / G*Power: d_z = 0.5 → 34)
    assert seeds_needed(effect * 2.0, 2.0) == n
    assert power(n, effect) >= 0.8 > power(n - 1, effect)


def test_power_agrees_with_a_simulation():
    rng = np.random.default_rng(0)
    n, effect, sims = 8, 1.0, 40_000
    d = rng.normal(effect, 1.0, (sims, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    simulated = np.mean(np.abs(t) > stats.t.ppf(0.975, n - 1))
    assert float(power(n, effect)) == pytest.approx(simulated, abs=0.01)


def test_seeds_needed_edges():
    assert seeds_needed(0.0, 1.0) == math.inf
    assert seeds_needed(1e-6, 1.0) == math.inf  # beyond the cap
    assert seeds_needed(0.3, 0.0) == 2
    assert math.isnan(seeds_needed(0.3, float("nan")))
    assert format_seeds_needed(math.inf, 10_000) == ">10000"
    assert format_seeds_needed(12.0, 10_000) == "12"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    small_store(root, SWEEPS_FILE, sweeps=["constant"], seeds=4)
    return root


def _per_seed(raw: pd.DataFrame, dataset: str, algorithm: str, schedule: str) -> pd.Series:
    rows = raw[(raw["dataset"] == dataset) & (raw["algorithm"] == algorithm)]
    return rows[rows["schedule"] == schedule].set_index("seed")["test_error"].sort_index()


def test_case_table_paired_columns_equal_a_per_seed_merge(store):
    raw = pd.read_parquet(store / "trials")
    table = pd.read_csv(io.StringIO(make_tables(store, "csv")["sweep_constant"]))
    checked = 0
    for row in table[table["case"].str.startswith("a_c=")].itertuples():
        rst = _per_seed(raw, row.dataset, "sam", f"constant({row.case.split('=')[1]})")
        for ref, alg, spec in (("sam", "sam", "constant(1)"), ("sgd", "sgd", "constant(0)")):
            other = _per_seed(raw, row.dataset, alg, spec)
            want = stats.ttest_rel(rst * 100, other * 100)
            ci = want.confidence_interval(0.95)
            assert getattr(row, f"vs_{ref}_pct_mean") == pytest.approx((rst - other).mean() * 100)
            assert getattr(row, f"vs_{ref}_pct_lo") == pytest.approx(ci.low)
            assert getattr(row, f"vs_{ref}_pct_hi") == pytest.approx(ci.high)
            assert getattr(row, f"vs_{ref}_p") == pytest.approx(want.pvalue)
            assert getattr(row, f"vs_{ref}_n") == 4
            checked += 1
    assert checked == 2 * 9 * 2
    sam = table[table["case"] == "SAM"]
    assert sam["vs_sam_n"].eq(0).all() and sam["vs_sam_pct_mean"].isna().all()


def test_markdown_shows_paired_columns_and_ordering_uses_paired_tests(store):
    md = make_tables(store, "md")
    header = next(ln for ln in md["sweep_constant"].splitlines() if ln.startswith("| model"))
    assert "| vs SAM (pp) | vs SGD (pp) | seeds needed (SAM / SGD) |" in header
    assert "95 % interval" in md["sweep_constant"]
    order = pd.read_csv(io.StringIO(make_tables(store, "csv")["ordering"]))
    below_sgd = order["rst_vs_sgd_pct_hi"] < 0
    above_sam = order["rst_vs_sam_pct_lo"] > 0
    wrong = (order["rst_vs_sgd_pct_lo"] > 0) | (order["rst_vs_sam_pct_hi"] < 0)
    want = np.select([below_sgd & above_sam, wrong], ["holds", "violated"], "unresolved")
    assert (order["paired_verdict"] == want).all()
    assert "by paired tests" in md["ordering"]


def test_identical_cells_have_no_spread_and_no_warning():
    with np.errstate(all="raise"):
        p = paired([0.3 - 0.1, 0.35 - 0.15, 0.5 - 0.3])  # 0.2 up to rounding
    assert p.sd == 0 and p.lo == p.hi == p.mean and math.isnan(p.p) and p.seeds_needed == 2
    zero = paired([0.0, 0.0, 0.0])
    assert not zero.resolved and zero.seeds_needed == math.inf
