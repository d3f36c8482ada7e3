"""`rstsweep search SWEEP --budget D --trials N`: the lowest test error at realized extra compute
≤ D, searched with Ray Tune and Optuna's TPE sampler (`ray.tune.search.optuna.OptunaSearch`).

The space is one schedule family or policy of the sweep (`--family` picks one when the sweep has
several): its parameters, quantised to 1/200 of their range, with the compute-setting parameter
(constant's a, budget's d) capped at D; optionally ρ (log-uniform in [ρ/4, 4ρ] around the
profile's) and α (uniform in [0, 2]). Each suggestion is replicated over the profile's seeds
(`search_trial.run_suggestion`) and scored by `search_trial.objective` (mean test error if the
mean realized extra compute is ≤ D, else 1 + the excess), so noise does not pick the winner.

Every evaluated cell is an ordinary cell: written once by the driver's store callback (the same
`StoreCallback._write` as `rstsweep run`) and recorded as a member of the sweep `<SWEEP>-search`
(group = the family), so `status`, `figures` and `tables` see it. Re-running continues: the
complete cases of the same family already in that sweep are fed to Optuna as finished trials
(`evaluated_rewards`) and only `N` minus their number new suggestions run; a suggestion whose
cells the store already holds (from any sweep) is scored without training. Early stopping is off
by default (late-SAM schedules pay off late); `--asha` stops a suggestion between its seeds.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rstsweep.errors import RstError

SUFFIX = "-search"
STEPS = 200  # quantisation of each parameter range (a stored case maps back onto the grid)
BUDGET_PARAM = {"constant": "a", "budget": "d"}  # the parameter that is the compute share


@dataclass(frozen=True)
class SearchOptions:
    """The settings of one `rstsweep search`."""

    sweep: str
    budget: float
    trials: int
    file: Path = Path("sweeps.yaml")
    profile: str = "paper"
    store: Path = Path("results")
    family: str | None = None
    rho: bool = False
    alpha: bool = False
    asha: bool = False
    seed: int = 0  # the TPE sampler's seed
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None
    max_failures: int = 2
    num_cpus: float | None = None
    data_dir: Path | None = None


@dataclass
class Space:
    """The search space: `p_<name>` -> (lo, hi, step) of the family's parameters, ρ and α."""

    family: str
    params: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    rho: tuple[float, float] | None = None
    alpha: tuple[float, float] | None = None

    def tune_space(self) -> dict[str, Any]:
        from ray import tune

        space: dict[str, Any] = {
            k: tune.quniform(lo, hi, q) for k, (lo, hi, q) in self.params.items()
        }
        if self.rho:
            space["rho"] = tune.loguniform(*self.rho)
        if self.alpha:
            space["alpha"] = tune.uniform(*self.alpha)
        return space

    def point(self, schedule: Any, rho: float, alpha: float) -> dict[str, float] | None:
        """The space point of a stored case, or None when it lies outside (another budget)."""
        out: dict[str, float] = {}
        for key, (lo, hi, q) in self.params.items():
            value = float(schedule.params[key[2:]])
            k = (value - lo) / q
            if not lo - 1e-12 <= value <= hi + 1e-12 or abs(k - round(k)) > 1e-6:
                return None
            out[key] = value
        for key, bounds, value in (("rho", self.rho, rho), ("alpha", self.alpha, alpha)):
            if bounds:
                if not bounds[0] <= value <= bounds[1]:
                    return None
                out[key] = float(value)
        return out

    def empty(self) -> bool:
        return not (self.params or self.rho or self.alpha)


def searchable(cells: list[Any]) -> dict[str, list[Any]]:
    """family -> its RST cells (SGD and the constant(0)/constant(1) endpoints are not searched)."""
    from rstsweep.schedules import parse

    endpoints = {parse("constant(0)").spec, parse("constant(1)").spec}
    out: dict[str, list[Any]] = {}
    for cell in cells:
        if cell.config.algorithm == "sgd" or cell.config.schedule in endpoints:
            continue
        out.setdefault(parse(cell.config.schedule).family, []).append(cell)
    return out


def build_space(o: SearchOptions, families: dict[str, list[Any]]) -> tuple[Space, list[Any]]:
    """The space and the base configs (one per seed × model × dataset) of the chosen family."""
    from rstsweep.schedules import get_family, is_policy, registered_policies

    if not families:
        raise RstError(f"search: sweep {o.sweep!r} has nothing to search (only SGD/SAM endpoints)")
    family = o.family or (next(iter(families)) if len(families) == 1 else None)
    if family is None or family not in families:
        known = ", ".join(families)
        what = f"--family {o.family!r} is not" if o.family else "pass --family: several are"
        raise RstError(f"search: {what} in sweep {o.sweep!r} (families: {known})")
    if is_policy(family):
        kind = next(k for k in registered_policies() if k.name == family)
        ranges = [(p.name, p.lo, p.hi) for p in kind.params]
    else:
        ranges = [(p.name, p.lo, p.hi) for p in get_family(family).params]
    space = Space(family)
    for name, lo, hi in ranges:
        if BUDGET_PARAM.get(family) == name:
            hi = min(hi, o.budget)
        if hi > lo:
            space.params[f"p_{name}"] = (lo, hi, float(f"{(hi - lo) / STEPS:.6g}"))
    bases = _bases(families[family])
    if o.rho:
        rho = bases[0].rho
        if rho <= 0:
            raise RstError("search: --rho needs a profile with ρ > 0")
        space.rho = (rho / 4, rho * 4)
    if o.alpha:
        space.alpha = (0.0, 2.0)
    if space.empty():
        raise RstError(
            f"search: {family} in sweep {o.sweep!r} has no parameter to search "
            "at this budget (add --rho or --alpha)"
        )
    return space, bases


def _bases(cells: list[Any]) -> list[Any]:
    """One config per (seed, model, dataset): the first cell of the family's first group."""
    group = cells[0].group
    seen: dict[tuple, Any] = {}
    for cell in cells:
        c = cell.config
        if cell.group == group:
            seen.setdefault((c.seed, c.model, c.dataset), c)
    return [seen[k] for k in sorted(seen, key=str)]


def prior_cases(store: Any, o: SearchOptions, space: Space, n_bases: int) -> list[dict]:
    """The complete cases of this search already in the store, as dicts with `point`, the means
    and `objective` (for the current budget)."""
    from rstsweep.schedules import parse
    from rstsweep.sweeper.search_trial import objective

    cells = store.read("cells")
    mine = cells[
        (cells["sweep"] == o.sweep + SUFFIX)
        & (cells["group"] == space.family)
        & (cells["profile"] == o.profile)
    ]
    trials = store.read("trials")
    trials = trials[trials["cell_id"].isin(set(mine["cell_id"]))]
    out = []
    for (spec, rho, alpha), rows in trials.groupby(["schedule", "rho", "alpha"], dropna=False):
        point = space.point(parse(spec), float(rho), float(alpha))
        if point is None or len(rows) < n_bases:
            continue
        errors = rows["test_error"].astype(float).fillna(1.0)
        extra = float(rows["realized_extra"].mean())
        out.append(
            {
                "point": point,
                "label": spec,
                "rho": float(rho),
                "alpha": float(alpha),
                "test_error": float(errors.mean()),
                "test_error_std": float(errors.std(ddof=0)),
                "realized_extra": extra,
                "seeds": len(rows),
                "objective": objective(float(errors.mean()), extra, o.budget),
            }
        )
    return out


@dataclass
class SearchSummary:
    family: str
    prior: int
    ran: int
    cells_written: int
    cases: list[dict]
    wall_s: float

    def best(self, budget: float) -> dict | None:
        feasible = [c for c in self.cases if c["realized_extra"] <= budget + 1e-9]
        return min(feasible, key=lambda c: c["test_error"]) if feasible else None


def run_search(o: SearchOptions, train_fn: Any = None) -> SearchSummary:
    """Validate, build the space, feed the store's cases to Optuna, run the rest through Tune."""
    from rstsweep.store.store import Store
    from rstsweep.sweeper.driver import check_datasets, with_absolute_data_dir
    from rstsweep.sweeper.spec import expand

    t0 = time.time()
    if not (isinstance(o.budget, (int, float)) and 0.0 <= o.budget <= 1.0):
        raise RstError(f"search: --budget {o.budget} is not in [0, 1]")
    if o.trials < 1:
        raise RstError(f"search: --trials {o.trials} must be >= 1")
    cells = with_absolute_data_dir(expand(o.file, o.sweep, o.profile), o.data_dir)
    space, bases = build_space(o, searchable(cells))
    store = Store(o.store)
    prior = prior_cases(store, o, space, len(bases))
    todo = max(0, o.trials - len(prior))
    written: set[str] = set()
    if todo:
        if train_fn is None:
            check_datasets([SimpleNamespace(config=b) for b in bases])  # type: ignore[misc]
        written = _tune(o, space, bases, prior, todo, store, train_fn)
    cases = prior_cases(store, o, space, len(bases))
    return SearchSummary(space.family, len(prior), todo, len(written), cases, time.time() - t0)


def _tune(o, space, bases, prior, todo, store, train_fn) -> set[str]:
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from rstsweep.sweeper.driver import _cells_dir, _quiet_tune_logs, _run_dir
    from rstsweep.sweeper.progress import EventLog
    from rstsweep.sweeper.resources import ray_session
    from rstsweep.sweeper.search_callback import SearchCallback
    from rstsweep.sweeper.search_trial import OBJECTIVE, run_suggestion

    trials = store.read("trials")
    known = {
        r.cell_id: (float(r.test_error), float(r.realized_extra))
        for r in trials[trials["family"] == space.family].itertuples()
    }
    searcher = OptunaSearch(
        metric=OBJECTIVE,
        mode="min",
        # offset by the cases already known: a continued search must not replay the first run's
        # random start-up suggestions (TPE samples its first trials at random)
        sampler=optuna.samplers.TPESampler(seed=o.seed + len(prior)),
        points_to_evaluate=[c["point"] for c in prior] or None,
        evaluated_rewards=[c["objective"] for c in prior] or None,
    )
    scheduler = None
    if o.asha:
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(
            time_attr="seeds_done",
            metric=OBJECTIVE,
            mode="min",
            max_t=len(bases),
            grace_period=1,
            reduction_factor=2,
        )
    with ray_session(None, num_cpus=o.num_cpus, num_gpus=0):
        run_dir = _run_dir(store, None)
        events = EventLog(run_dir / "events.jsonl")
        callback = SearchCallback(store, o.profile, events, total=todo)
        trainable = tune.with_parameters(
            run_suggestion,
            bases=bases,
            family=space.family,
            budget=o.budget,
            known=known,
            sweep=o.sweep + SUFFIX,
            train_fn=train_fn,
            threads=max(1, int(o.cpus_per_trial)),
            work_root=str(_cells_dir(store, run_dir)),
        )
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": o.cpus_per_trial}),
            param_space=space.tune_space(),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=todo,
                max_concurrent_trials=o.max_concurrent,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(run_dir),
                verbose=0,
                callbacks=[callback],
                failure_config=tune.FailureConfig(max_failures=o.max_failures),
            ),
        )
        with _quiet_tune_logs():
            tuner.fit()
    shutil.rmtree(run_dir / "tune", ignore_errors=True)
    return callback.written


def search_command(o: SearchOptions) -> int:
    """`rstsweep search`: run, then print the cases by objective and the best within budget."""
    summary = run_search(o)
    print(
        f"search {o.sweep} ({o.profile}), {summary.family}, Δη ≤ {o.budget:g}: "
        f"{summary.prior} case(s) from the store, {summary.ran} new suggestion(s), "
        f"{summary.cells_written} cell(s) written ({summary.wall_s:.1f} s)"
    )
    for case in sorted(summary.cases, key=lambda c: c["objective"])[:10]:
        mark = "" if case["realized_extra"] <= o.budget + 1e-9 else "  (over budget)"
        print(f"  {_case_text(case)}{mark}")
    best = summary.best(o.budget)
    print(f"best: {_case_text(best)}" if best else "best: no case within the budget yet")
    return 0


def _case_text(case: dict) -> str:
    err = 100 * case["test_error"]
    std = 100 * case["test_error_std"]
    return (
        f"{case['label']} ρ={case['rho']:g} α={case['alpha']:g}: error {err:.2f} ± {std:.2f} %"
        f" over {case['seeds']} cell(s), realized Δη {case['realized_extra']:.3f}"
    )
