"""The Ray Tune trial of `rstsweep search`: one Optuna suggestion, replicated over the seeds.

`run_suggestion` turns the suggested parameters into a schedule/policy spec (and ρ, α), builds one
ordinary CellConfig per base cell (one per seed × model × dataset of the profile), trains the
cells the store does not hold yet one after the other, and after each seed reports the running
mean test error, realized extra compute and the objective (`objective`). A freshly trained cell's
result travels in the report under `FINAL_KEY`, its sweep membership under `CELL_KEY`: the
driver-side callback writes both to the store (the trial never touches the store), so every
evaluated cell is an ordinary cell, written once. ASHA, when enabled, can stop a suggestion
between its seeds (never inside a cell).

Imported only in Ray workers and by the driver after Ray is up (module-level `ray` import).
"""

from __future__ import annotations

import math
import shutil
from typing import TYPE_CHECKING

from ray import tune

from rstsweep.core.config import CellConfig
from rstsweep.plugins import load_plugins
from rstsweep.schedules import parse
from rstsweep.sweeper.trial import (
    FINAL_KEY,
    TrainFn,
    default_train,
    hide_gpus_unless_given,
    result_to_payload,
    trial_placement,
    with_threads,
    work_dir,
)

if TYPE_CHECKING:
    from rstsweep.core.result import EpochRecord

CELL_KEY = "rst_cell"
OBJECTIVE = "objective"
PARAM_PREFIX = "p_"  # suggested schedule/policy parameters are `p_<name>`; ρ and α as themselves


def objective(test_error: float, realized_extra: float, budget: float) -> float:
    """What the search minimises: the test error when the realized extra compute is within the
    budget, else 1 + the excess (worse than any feasible error, and graded, so TPE learns the
    boundary). A diverged run (NaN error) counts as error 1."""
    error = test_error if math.isfinite(test_error) else 1.0
    if realized_extra <= budget + 1e-9:
        return error
    return 1.0 + (realized_extra - budget)


def suggestion_updates(family: str, params: dict[str, float]) -> dict[str, str | float]:
    """CellConfig updates of a suggestion: the canonical schedule spec, and ρ/α if searched."""
    values = {
        k[len(PARAM_PREFIX) :]: float(v) for k, v in params.items() if k.startswith(PARAM_PREFIX)
    }
    inner = ", ".join(f"{k}={v!r}" for k, v in values.items())
    spec = parse(f"{family}({inner})" if inner else family).spec
    updates: dict[str, str | float] = {"schedule": spec}
    for key in ("rho", "alpha"):
        if key in params:
            updates[key] = float(f"{float(params[key]):.6g}")
    return updates


def case_label(updates: dict[str, str | float]) -> str:
    extra = "".join(
        f", {'ρ' if k == 'rho' else 'α'}={updates[k]:g}" for k in ("rho", "alpha") if k in updates
    )
    return f"{updates['schedule']}{extra}"


def run_suggestion(
    params: dict[str, float],
    bases: list[CellConfig],
    family: str,
    budget: float,
    known: dict[str, tuple[float, float]],
    sweep: str,
    train_fn: TrainFn | None = None,
    threads: int | None = None,
    work_root: str | None = None,
    cost: str = "flops",
) -> None:
    """Tune trainable: evaluate one suggestion over the base cells (see the module docstring).
    `cost` "time": the budget is in measured extra time (`extra_time_measured`; the FLOP model's
    where the cell timed no base step)."""
    load_plugins()  # a user's schedule family, algorithm, ... registered on this worker too
    hide_gpus_unless_given()
    updates = suggestion_updates(family, params)
    label = case_label(updates)
    train = train_fn or default_train
    errors: list[float] = []
    extras: list[float] = []
    for i, base in enumerate(bases):
        config = CellConfig(**{**base.model_dump(), **updates})
        cid = config.cell_id()
        meta = {
            "sweep": sweep,
            "group": family,
            "label": label,
            "config_json": config.model_dump_json(),
        }
        report: dict[str, object] = {CELL_KEY: meta, "seeds_done": i + 1, "cell_id": cid}
        report.update(trial_placement())
        if cid in known:  # already in the store (an earlier search, or an ordinary sweep)
            error, extra = known[cid]
        else:
            work = work_dir(work_root, cid)
            result = train(with_threads(config, threads), work, resume=True, on_epoch=_ignore)
            error, extra = float(result.test_error), float(result.realized_extra)
            measured = result.extra_time_measured
            if cost == "time" and measured is not None:
                extra = float(measured)
            report[FINAL_KEY] = result_to_payload(result)
            shutil.rmtree(work, ignore_errors=True)
        errors.append(error)
        extras.append(extra)
        mean_error = sum(errors) / len(errors)
        mean_extra = sum(extras) / len(extras)
        report.update(
            test_error=mean_error,
            realized_extra=mean_extra,
            **{OBJECTIVE: objective(mean_error, mean_extra, budget)},
        )
        tune.report(report)


def _ignore(record: EpochRecord) -> None:
    """Per-epoch callback: nothing to report inside a cell (ASHA acts between seeds)."""
