"""`rstsweep report` and the report every `run` leaves in its store: gathers each recorded sweep's
status (with its pending and failed cells) and plan as the plain records of `sweeper.records`,
and hands them with the store to `rstsweep.analysis.report`, which renders the HTML. Plans are
made without probing (no torch, no ray): the time left comes from the store's measured step costs
and cached probes only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rstsweep.errors import RstError
from rstsweep.store.store import Store, open_store
from rstsweep.sweeper.estimates import target_device
from rstsweep.sweeper.plan import make_plan
from rstsweep.sweeper.records import plan_record, status_record, sweep_record
from rstsweep.sweeper.status import collect_status
from rstsweep.sweeps import expand, load_sweeps


def report_inputs(
    store_dir: str | Path, file: Path | None
) -> tuple[dict[str, object], list[dict[str, object]], list[str]]:
    """(status record, plan records, notes) of every sweep recorded in the store. A sweep the
    sweeps file cannot expand (not declared, another profile) is shown from the cells table,
    without a plan, and a note says why."""
    overview = collect_status(store_dir)
    record = status_record(overview)
    store = open_store(store_dir, must_exist=True, read_only=True)
    use_file = file if file is not None and file.exists() else None
    sweeps, plans, notes = [], [], []
    for sw in overview.sweeps:
        try:
            detail = collect_status(store_dir, sw.sweep, use_file).sweeps[0]
        except RstError as exc:
            notes.append(f"{sw.sweep}: cells from the store's cells table ({exc})")
            detail = sw
        sweeps.append(sweep_record(detail))
        plan = _plan(store, sw.sweep, detail.profiles, use_file) if use_file else None
        if plan is not None:
            plans.append(plan)
    record["sweeps"] = sweeps
    return record, plans, notes


def _plan(store: Store, sweep: str, profiles: list[str], file: Path) -> dict[str, object] | None:
    if len(profiles) != 1:
        return None
    try:
        cells = expand(load_sweeps(file), sweep, profiles[0])
    except RstError:
        return None
    device = target_device(0.0)  # CPU unless told: `plan --gpus-per-trial` is the precise tool
    return plan_record(make_plan(cells, sweep, profiles[0], store, device=device))


def make_report(store_dir: str | Path, out: Path | None = None, file: Path | None = None) -> str:
    """Build the report of the store at `store_dir` and write it (`out`, default
    `<store>/report.html`). Returns where it went."""
    from rstsweep.analysis.report import build_report, write_report

    status, plans, notes = report_inputs(store_dir, file)
    store = open_store(store_dir, must_exist=True, read_only=True)
    text = build_report(store, status, plans, notes)
    return write_report(store, text, None if out is None else str(out))


def report_after_run(store_dir: str | Path, file: Path | None) -> None:
    """The end of every `run`: refresh `<store>/report.html`. A report that cannot be made costs
    one warning and never changes the run's outcome (the store is the truth)."""
    try:
        where = make_report(store_dir, None, file)
    except Exception as exc:  # the report is a view; the run's results are already safe
        text = str(exc).strip().splitlines()
        print(
            f"rstsweep: warning: no report: {text[0] if text else type(exc).__name__}",
            file=sys.stderr,
        )
        return
    print(f"report: {where}")
