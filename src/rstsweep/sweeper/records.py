"""Status and plan as plain JSON-able records: what `status --json` prints, what `status --pending`
lists, and what the HTML report (`rstsweep.analysis.report`) renders. One mapping for all three, so
the report and the machine-readable output never disagree with the status table. No torch, no ray.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from rstsweep.sweeper.live import STATES
from rstsweep.sweeper.plan import GroupPlan, SweepPlan
from rstsweep.sweeper.status import GroupStatus, StoreStatus, SweepStatus


def _plain(value: object) -> object:
    """numpy/pandas scalars and timestamps -> JSON values (NaN -> None)."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def group_record(g: GroupStatus) -> dict[str, object]:
    """Counts by state, realized passes, steps and training time of a group (or a total)."""
    extra = (g.passes - g.steps) / g.steps if g.steps else None
    return {
        "group": g.group,
        "cells": g.total,
        **{k: g.counts[k] for k in STATES},
        "passes": g.passes,
        "steps": g.steps,
        "realized_extra": extra,
        "train_time_s": g.train_time_s,
    }


def cell_records(sw: SweepStatus, states: tuple[str, ...] = STATES) -> list[dict[str, object]]:
    """The sweep's cells in `states`: cell_id, group, label, state, key settings, attempts and
    last error (the whole traceback; its last line is what tables show)."""
    if sw.cells.empty:
        return []
    rows = sw.cells[sw.cells["state"].isin(states)]
    return [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]


def sweep_record(sw: SweepStatus) -> dict[str, object]:
    return {
        "sweep": sw.sweep,
        "profiles": list(sw.profiles),
        "cells_from": sw.source,
        "groups": [group_record(g) for g in sw.groups],
        "total": group_record(sw.total()),
        "open_cells": cell_records(sw, ("running", "failed", "pending")),
    }


def status_record(status: StoreStatus) -> dict[str, object]:
    """Everything `status` shows, as one JSON-able dict (`status --json`)."""
    beat = status.heartbeat
    return {
        "store": str(status.store),
        "live_run": _plain(dict(beat)) if status.live and beat else None,
        "last_heartbeat": _plain(dict(beat)) if beat else None,
        "finished_cells": status.trials,
        "passes": status.passes,
        "steps": status.steps,
        "train_time_s": status.train_time_s,
        "sweeps": [sweep_record(sw) for sw in status.sweeps],
    }


def plan_record(plan: SweepPlan) -> dict[str, object]:
    """A sweep's plan: per group cells, done, pending, E[Δη], expected passes and estimated time
    of the pending cells (None: no measurement yet), and which of those times are probe-based."""

    def group(g: GroupPlan) -> dict[str, object]:
        return {
            "group": g.group,
            "cells": g.cells,
            "done": g.done,
            "pending": g.pending,
            "expected_extra": g.mean_extra,
            "passes": g.passes,
            "pending_passes": g.pending_passes,
            "pending_time_s": g.pending_time_s,
            "probed": g.probed,
        }

    return {
        "sweep": plan.sweep,
        "profile": plan.profile,
        "models": plan.models,
        "datasets": plan.datasets,
        "seeds": plan.seeds,
        "groups": [group(g) for g in plan.groups],
        "total": group(plan.total()),
    }


def print_json(record: dict[str, object]) -> None:
    print(json.dumps(record, indent=2, ensure_ascii=False, default=str))


def print_pending(status: StoreStatus) -> None:
    """`status --pending`: one line per cell not done (tab-separated: cell_id, group, label, state,
    key settings, attempts, last error line), so it greps and pipes."""
    print("\t".join(("cell_id", "group", "label", "state", "settings", "attempts", "last_error")))
    for sw in status.sweeps:
        for row in cell_records(sw, ("running", "failed", "pending")):
            settings = " ".join(f"{k}={v}" for k, v in row["settings"].items())
            lines = str(row["error"]).strip().splitlines()
            fields = (row["cell_id"], row["group"], row["label"], row["state"], settings)
            print("\t".join((*map(str, fields), str(row["attempts"]), lines[-1] if lines else "")))
