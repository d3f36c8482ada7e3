"""Paired differences between cases that share their seeds (no torch, no ray).

Cells with the same seed share their random numbers (data order, initialisation, coins), so two
schedules are compared by the per-seed differences d_s = error(case, s) − error(reference, s),
not by overlapping mean ± std. Owns: the statistics of one set of paired differences (mean, 95 %
interval: Student t over seeds, a percentile bootstrap from 10 seeds on; the paired t-test's
p-value; the seeds a paired t-test needs to resolve the observed mean difference at 80 % power,
two-sided α = 0.05, from the observed sd), and the per-case differences to the SAM and SGD cells
of the same setting that the tables, the ordering check and the paired figure show.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special  # the t, noncentral t and normal functions (scipy.stats: +0.4 s import)

LEVEL = 0.95  # two-sided interval; α = 1 − LEVEL for the seeds-needed power calculation
POWER = 0.80
BOOTSTRAP_FROM = 10  # seeds from which the interval is a bootstrap instead of Student t
BOOTSTRAP_RESAMPLES = 10_000
MAX_SEEDS = 10_000  # "seeds needed" above this is reported as unreachable (inf)
REFERENCES = ("sam", "sgd")
TIE = 1e-12  # differences spread less than this (errors are fractions) are all equal


@dataclass(frozen=True)
class Paired:
    """Paired differences of one case to one reference (errors as fractions, like the store)."""

    n: int  # seeds present (and not diverged) in both
    mean: float
    sd: float  # sample sd of the differences (NaN for one seed)
    lo: float  # 95 % interval of the mean difference (NaN below two seeds)
    hi: float
    p: float  # paired t-test, two-sided (NaN below two seeds or with sd = 0)
    method: str  # "t", "bootstrap" or "" (no interval)
    seeds_needed: float  # NaN: not computable; inf: more than MAX_SEEDS

    @property
    def resolved(self) -> bool:
        """The interval excludes zero."""
        return bool(self.lo > 0 or self.hi < 0)


def t_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """mean ± t_{(1+level)/2, n−1} · sd / √n."""
    n = len(d)
    half = special.stdtrit(n - 1, (1 + level) / 2) * d.std(ddof=1) / np.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def bootstrap_interval(
    d: np.ndarray, level: float = LEVEL, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap of the mean (fixed generator: the same store gives the same table)."""
    means = _resample_weights(len(d), resamples, seed) @ d
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


@functools.lru_cache(maxsize=8)
def _resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples × n) weights: how often each sample is drawn into each resample, over n. The
    generator is fixed, so every set of n differences shares them (a table of a thousand cases
    draws them once)."""
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    counts = np.zeros((resamples, n))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    return counts / n


def power(n: np.ndarray | int, effect: float, alpha: float = 1 - LEVEL) -> np.ndarray:
    """Power of the two-sided paired t-test with n pairs at standardised effect |mean|/sd
    (noncentral t with n − 1 degrees of freedom and noncentrality effect·√n)."""
    n = np.asarray(n, dtype=float)
    df = n - 1
    crit = special.stdtrit(df, 1 - alpha / 2)
    nc = effect * np.sqrt(n)
    return 1.0 - special.nctdtr(df, nc, crit) + special.nctdtr(df, nc, -crit)


def seeds_needed(mean: float, sd: float, target: float = POWER, alpha: float = 1 - LEVEL) -> float:
    """The fewest seeds (≥ 2) at which a paired t-test resolves `mean` with power `target`,
    given the sd of the paired differences; inf above MAX_SEEDS, NaN when sd is unknown."""
    if not np.isfinite(sd) or not np.isfinite(mean):
        return float("nan")
    if mean == 0:
        return float("inf")
    if sd == 0:
        return 2.0
    effect = abs(mean) / sd
    z = special.ndtri(1 - alpha / 2) + special.ndtri(target)
    guess = (z / effect) ** 2  # the normal approximation; the t-test needs a few more
    if guess > MAX_SEEDS:
        return float("inf")
    # A scan, not a bisection: the noncentral t is NaN at large noncentrality (power ≈ 1 there).
    # The answer lies just above the normal approximation: scan a window from there first (the
    # power grows with n, so a window starting below the target holds the first n reaching it).
    last = int(min(MAX_SEEDS, 2 * guess + 20))
    start = max(2, int(guess) - 1)
    window = np.arange(start, min(last, int(1.25 * guess) + 10) + 1)
    reached = power(window, effect, alpha) >= target
    if len(window) and not reached[0] and reached.any():
        return float(window[np.argmax(reached)])
    n = np.arange(2, last + 1)
    ok = np.flatnonzero(power(n, effect, alpha) >= target)
    return float(n[ok[0]]) if len(ok) else float("inf")


def paired(d: np.ndarray | list[float]) -> Paired:
    """Statistics of one set of paired differences (NaN values dropped)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    nan = float("nan")
    if n == 0:
        return Paired(0, nan, nan, nan, nan, nan, "", nan)
    mean = float(d.mean())
    if n == 1:
        return Paired(1, mean, nan, nan, nan, nan, "", nan)
    # equal differences up to rounding (identical cells) have no spread, not a 1e-17 one
    sd = 0.0 if np.ptp(d) <= TIE else float(d.std(ddof=1))
    if sd == 0:
        (lo, hi), method = (mean, mean), "t"
    elif n >= BOOTSTRAP_FROM:
        (lo, hi), method = bootstrap_interval(d), "bootstrap"
    else:
        (lo, hi), method = t_interval(d), "t"
    # the paired t-test (scipy.stats.ttest_rel's statistic), also where the interval is bootstrap
    p = float(2 * special.stdtr(n - 1, -abs(mean) / (sd / np.sqrt(n)))) if sd > 0 else nan
    return Paired(n, mean, sd, lo, hi, p, method, seeds_needed(mean, sd))


# ----------------------------------------------------------------------------- per case


def seed_errors(trials: pd.DataFrame) -> pd.DataFrame:
    """Test error per case (rows) and seed (columns); diverged cells are NaN (unpaired)."""
    ok = trials[trials["ok"]]
    return ok.pivot_table(index="case_id", columns="seed", values="test_error", aggfunc="mean")


def reference_index(ends: pd.DataFrame) -> dict[tuple[object, str], pd.DataFrame]:
    """The reference rows ("sam"/"sgd" of `ends`) of each (setting, role), most seeds first."""
    ordered = ends.sort_values(["n_seeds", "case_id"], ascending=[False, True])
    return {key: rows for key, rows in ordered.groupby(["setting", "role"], sort=False)}


def reference_of(
    case: pd.Series, index: dict[tuple[object, str], pd.DataFrame], role: str
) -> str | None:
    """The case_id of the `role` ("sam"/"sgd") case of the same setting: for SAM the one with
    the same ρ where there is one, else the one with most seeds."""
    rows = index.get((case["setting"], role))
    if rows is None:
        return None
    if role == "sam" and len(rows) > 1:
        same_rho = rows[np.isclose(rows["rho"].astype(float), float(case["rho"]))]
        rows = same_rho if len(same_rho) else rows
    return str(rows.iloc[0]["case_id"])


def paired_frame(trials: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """One row per case_id of `cases`: `vs_<ref>_<field>` for ref in sam, sgd and every Paired
    field (`n`, `mean`, `lo`, `hi`, `p`, `seeds_needed`, ...) plus `vs_<ref>_resolved`; errors
    as fractions. A reference compared with itself has n = 0 (nothing to show)."""
    wide = seed_errors(trials)
    unique = cases.drop_duplicates("case_id")
    index = reference_index(unique[unique["role"].isin(REFERENCES)])
    rows = []
    for _, case in unique.iterrows():
        row: dict[str, object] = {"case_id": case["case_id"]}
        for role in REFERENCES:
            ref = reference_of(case, index, role)
            same = ref is None or ref == case["case_id"] or case["case_id"] not in wide.index
            diff = [] if same else (wide.loc[case["case_id"]] - wide.loc[ref]).to_numpy()
            result = paired(diff)
            row.update({f"vs_{role}_{k}": v for k, v in asdict(result).items()})
            row[f"vs_{role}_resolved"] = result.resolved
            row[f"vs_{role}_ref"] = None if same else ref
        rows.append(row)
    columns = ["case_id"] + [
        f"vs_{r}_{k}" for r in REFERENCES for k in [*Paired.__dataclass_fields__, "resolved", "ref"]
    ]
    return pd.DataFrame(rows, columns=columns).set_index("case_id")
