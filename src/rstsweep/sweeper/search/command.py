"""`rstsweep search SWEEP --budget D --trials N`: the lowest test error at realized extra compute
≤ D, searched with Ray Tune and Optuna's TPE sampler (`ray.tune.search.optuna.OptunaSearch`).

The space is one schedule family or policy of the sweep (`--family` picks one when the sweep has
several): its parameters, quantised to 1/200 of their range, with the compute-setting parameter
(constant's a, budget's d) capped at D; optionally ρ (log-uniform in [ρ/4, 4ρ] around the
profile's) and α (uniform in [0, 2]). Each suggestion is replicated over the profile's seeds
(`objective.run_suggestion`) and scored by `objective.objective` (mean test error if the
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
from typing import TYPE_CHECKING

from rstsweep.core.passes import COST_COLUMNS, COSTS
from rstsweep.errors import RstError
from rstsweep.schedules import get_family, is_policy, parse, registered_policies
from rstsweep.store.rows import cost_columns
from rstsweep.sweeper.live import EventLog
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeps import expand

if TYPE_CHECKING:
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from rstsweep.core.config import CellConfig
    from rstsweep.schedules import Policy, Schedule
    from rstsweep.store.store import Store
    from rstsweep.sweeper.trial import TrainFn
    from rstsweep.sweeps import Cell

SUFFIX = "-search"
STEPS = 200  # quantisation of each parameter range (a stored case maps back onto the grid)
BUDGET_PARAM = {"constant": "a", "budget": "d"}  # the parameter that is the compute share


@dataclass(frozen=True)
class SearchOptions:
    """The settings of one `rstsweep search`: what to search, and the same run options as
    `rstsweep run` (sweep, file, profile, store, `--set`, Ray address, placement, trackers, the
    live-run guard), which travel whole."""

    budget: float
    trials: int
    run: RunOptions
    family: str | None = None
    rho: bool = False
    alpha: bool = False
    asha: bool = False
    seed: int = 0  # the TPE sampler's seed

    @property
    def sweep(self) -> str:
        return self.run.sweep

    @property
    def file(self) -> Path:
        return self.run.file

    @property
    def profile(self) -> str:
        return self.run.profile

    @property
    def store(self) -> str | Path:
        return self.run.store

    # what the budget is in: the FLOP model's extra passes ("flops", Δη) or the extra time the
    # cells' branch timers measured in base-step units ("time"); `realized_extra` of a case and
    # of a trial report holds the chosen one
    cost: str = "flops"


@dataclass
class Space:
    """The search space: `p_<name>` -> (lo, hi, step) of the family's parameters, ρ and α."""

    family: str
    params: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    rho: tuple[float, float] | None = None
    alpha: tuple[float, float] | None = None

    def tune_space(self) -> dict[str, object]:
        from ray import tune

        space: dict[str, object] = {
            k: tune.quniform(lo, hi, q) for k, (lo, hi, q) in self.params.items()
        }
        if self.rho:
            space["rho"] = tune.loguniform(*self.rho)
        if self.alpha:
            space["alpha"] = tune.uniform(*self.alpha)
        return space

    def point(
        self, schedule: Schedule | Policy, rho: float, alpha: float
    ) -> dict[str, float] | None:
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


def searchable(cells: list[Cell]) -> dict[str, list[Cell]]:
    """family -> its RST cells (SGD and the constant(0)/constant(1) endpoints are not searched)."""
    endpoints = {parse("constant(0)").spec, parse("constant(1)").spec}
    out: dict[str, list[Cell]] = {}
    for cell in cells:
        if cell.config.algorithm == "sgd" or cell.config.schedule in endpoints:
            continue
        out.setdefault(parse(cell.config.schedule).family, []).append(cell)
    return out


def build_space(
    o: SearchOptions, families: dict[str, list[Cell]]
) -> tuple[Space, list[CellConfig]]:
    """The space and the base configs (one per seed × model × dataset) of the chosen family."""
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


def _bases(cells: list[Cell]) -> list[CellConfig]:
    """One config per (seed, model, dataset): the first cell of the family's first group."""
    group = cells[0].group
    seen: dict[tuple, CellConfig] = {}
    for cell in cells:
        c = cell.config
        if cell.group == group:
            seen.setdefault((c.seed, c.model, c.dataset), c)
    return [seen[k] for k in sorted(seen, key=str)]


def prior_cases(store: Store, o: SearchOptions, space: Space, n_bases: int) -> list[dict]:
    """The complete cases of this search already in the store, as dicts with `point`, the means
    and `objective` (for the current budget)."""
    from rstsweep.sweeper.search.objective import objective

    cells = store.read("cells")
    mine = cells[
        (cells["sweep"] == o.sweep + SUFFIX)
        & (cells["group"] == space.family)
        & (cells["profile"] == o.profile)
    ]
    trials = cost_columns(store.read("trials"))
    trials = trials[trials["cell_id"].isin(set(mine["cell_id"]))]
    out = []
    for (spec, rho, alpha), rows in trials.groupby(["schedule", "rho", "alpha"], dropna=False):
        point = space.point(parse(spec), float(rho), float(alpha))
        if point is None or len(rows) < n_bases:
            continue
        errors = rows["test_error"].astype(float).fillna(1.0)
        extra = float(rows[COST_COLUMNS[o.cost]].mean())
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
                "cost": o.cost,
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


def run_search(o: SearchOptions, train_fn: TrainFn | None = None) -> SearchSummary:
    """Validate, build the space, feed the store's cases to Optuna, run the rest through Tune."""
    from rstsweep.store.store import open_store
    from rstsweep.sweeper.driver import check_datasets, with_absolute_data_dir
    from rstsweep.sweeper.guard import refuse_if_live, release
    from rstsweep.sweeper.resources import validate_request

    t0 = time.time()
    if not (isinstance(o.budget, (int, float)) and 0.0 <= o.budget <= 1.0):
        raise RstError(f"search: --budget {o.budget} is not in [0, 1]")
    if o.cost not in COSTS:
        raise RstError(f"search: --cost {o.cost!r} is not one of {', '.join(COSTS)}")
    if o.trials < 1:
        raise RstError(f"search: --trials {o.trials} must be >= 1")
    run = o.run
    validate_request(run.placement, max_failures=run.max_failures)
    cells = expand(run.file, run.sweep, run.profile, run.overrides)
    cells = with_absolute_data_dir(cells, run.data_dir)
    space, bases = build_space(o, searchable(cells))
    store = open_store(run.store, must_exist=False)
    prior = prior_cases(store, o, space, len(bases))
    todo = max(0, o.trials - len(prior))
    written: set[str] = set()
    if todo:
        refuse_if_live(store, force=run.force)
        if train_fn is None and run.address is None:
            check_datasets([SimpleNamespace(config=b) for b in bases])  # type: ignore[misc]
        try:
            written = _tune(o, space, bases, prior, todo, store, train_fn)
        finally:
            release(store)
    cases = prior_cases(store, o, space, len(bases))
    return SearchSummary(space.family, len(prior), todo, len(written), cases, time.time() - t0)


def _tune(o, space, bases, prior, todo, store, train_fn) -> set[str]:
    from ray import tune

    from rstsweep.sweeper.driver import cells_dir, quiet_tune_logs, run_dir_of
    from rstsweep.sweeper.guard import claim
    from rstsweep.sweeper.resources import check_fits, cluster_gpus, ray_session
    from rstsweep.sweeper.search.callback import SearchCallback
    from rstsweep.sweeper.search.objective import run_suggestion
    from rstsweep.sweeper.trackers import TrackerHub

    trials = cost_columns(store.read("trials"))
    column = COST_COLUMNS[o.cost]
    known = {
        r.cell_id: (float(r.test_error), float(getattr(r, column)))
        for r in trials[trials["family"] == space.family].itertuples()
    }
    r = o.run
    with ray_session(r.address, num_cpus=r.num_cpus, num_gpus=r.num_gpus) as ray:
        r = r.with_gpus(cluster_gpus(ray))  # one GPU per trial where the cluster has GPUs
        check_fits(r.placement, ray.nodes())
        claim(store, sweep=r.sweep + SUFFIX, profile=r.profile, force=r.force)
        run_dir = run_dir_of(store, r.scratch)
        events = EventLog(run_dir / "events.jsonl")
        hub = TrackerHub(r.trackers, store.root, r.sweep + SUFFIX)
        callback = SearchCallback(store, r.profile, events, total=todo, trackers=hub)
        trainable = tune.with_parameters(
            run_suggestion,
            bases=bases,
            family=space.family,
            budget=o.budget,
            cost=o.cost,
            known=known,
            sweep=r.sweep + SUFFIX,
            train_fn=train_fn,
            threads=max(1, int(r.placement.cpus)),
            work_root=str(cells_dir(store, run_dir)),
        )
        tuner = tune.Tuner(
            tune.with_resources(trainable, r.placement.as_tune()),
            param_space=space.tune_space(),
            tune_config=tune.TuneConfig(
                search_alg=_searcher(o, prior),
                scheduler=_scheduler(o, len(bases)),
                num_samples=todo,
                max_concurrent_trials=r.placement.slots,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(run_dir),
                verbose=0,
                callbacks=[callback],
                failure_config=tune.FailureConfig(max_failures=r.max_failures),
            ),
        )
        try:
            with quiet_tune_logs():
                tuner.fit()
        finally:
            hub.close()
    shutil.rmtree(run_dir / "tune", ignore_errors=True)
    return callback.written


def _searcher(o: SearchOptions, prior: list[dict]) -> OptunaSearch:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from rstsweep.sweeper.search.objective import OBJECTIVE

    return OptunaSearch(
        metric=OBJECTIVE,
        mode="min",
        # offset by the cases already known: a continued search must not replay the first run's
        # random start-up suggestions (TPE samples its first trials at random)
        sampler=optuna.samplers.TPESampler(seed=o.seed + len(prior)),
        points_to_evaluate=[c["point"] for c in prior] or None,
        evaluated_rewards=[c["objective"] for c in prior] or None,
    )


def _scheduler(o: SearchOptions, seeds: int) -> ASHAScheduler | None:
    if not o.asha:
        return None
    from ray.tune.schedulers import ASHAScheduler

    from rstsweep.sweeper.search.objective import OBJECTIVE

    return ASHAScheduler(
        time_attr="seeds_done",
        metric=OBJECTIVE,
        mode="min",
        max_t=seeds,
        grace_period=1,
        reduction_factor=2,
    )


def search_command(o: SearchOptions) -> int:
    """`rstsweep search`: run, then print the cases by objective and the best within budget."""
    summary = run_search(o)
    print(
        f"search {o.sweep} ({o.profile}), {summary.family}, extra {o.cost} ≤ {o.budget:g}: "
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
        f" over {case['seeds']} cell(s), realized extra ({case.get('cost', 'flops')}) "
        f"{case['realized_extra']:.3f}"
    )
