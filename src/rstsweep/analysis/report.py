"""The store report: one self-contained HTML file (no server, no network) with everything the
other commands show about a result store, for a browser or a phone.

Sections: per-sweep status (counts by state, the cells not done with their settings and last
error), the plan's estimate of what is left, the paper's figures (Zhao et al., Figures 1-5) as
inline SVG from `analysis.figures.FIGURES`, the Pareto view (test error vs realized extra compute
and the best case at each budget), every table of `analysis.tables.build_tables`, and every
finished cell with its reproducibility manifest on demand. Status and plan arrive as the plain
records of `rstsweep.sweeper.records` (this package never imports the sweeper); the figures and
tables are computed here from the store alone. No torch, no ray.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import matplotlib
import pandas as pd

from rstsweep.analysis import report_html as h
from rstsweep.analysis.figures import FIGURES
from rstsweep.analysis.plotting import STYLE, Note
from rstsweep.analysis.results import Results, load
from rstsweep.analysis.tables import build_tables
from rstsweep.core.format import format_count, format_duration
from rstsweep.core.result import MANIFEST_KEYS
from rstsweep.store.store import Store

if TYPE_CHECKING:
    from rstsweep.analysis.render import Table

REPORT_NAME = "report.html"  # written into the store by every `run`
OPEN_CELLS_SHOWN = 500  # per sweep; the rest are counted (`status --pending` lists them all)
OPEN_SHOWN_OPEN = 20  # a longer list of cells not done starts folded
PARETO = ("pareto", "best_at_budget")  # the figure and the table of the Pareto section


def build_report(
    store: Store,
    status: dict[str, object] | None = None,
    plans: Sequence[dict[str, object]] = (),
    notes: Sequence[str] = (),
) -> str:
    """The report of `store` as one HTML document. `status`: `records.status_record`; `plans`:
    `records.plan_record` per sweep (empty where the sweeps file does not know the sweep);
    `notes`: lines shown under the header (e.g. why a plan is missing)."""
    res = load(store)
    figure_notes: list[str] = []
    figures = _figures(res, figure_notes.append)
    tables = build_tables(res)
    sections = [
        ("status", "Status", _status_section(status)),
        ("plan", "Plan", _plan_section(plans)),
        ("figures", "Figures", _figures_section(figures, figure_notes)),
        ("pareto", "Pareto view", _pareto_section(figures, tables)),
        ("tables", "Tables", _tables_section([t for t in tables if t.name not in PARETO])),
        ("cells", "Cells", _cells_section(res)),
    ]
    return h.page(f"rstsweep report: {store.root}", _header(store, status, notes), sections)


def write_report(store: Store, html_text: str, out: str | None = None) -> str:
    """Write the report (atomically; into the store, local or object store, unless `out` is a
    path). Returns where it went."""
    if out is not None:
        from rstsweep.core.atomic import atomic_write_text

        return str(atomic_write_text(out, html_text))
    path = store.location.path(REPORT_NAME)
    store.location.write(path, lambda handle: handle.write(html_text.encode()))
    return store.location.display(path)


# ----------------------------------------------------------------------------- sections


def _header(store: Store, status: dict[str, object] | None, notes: Sequence[str]) -> str:
    from rstsweep import __version__

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"<h1>rstsweep report</h1><div class='muted'>{h.esc(store.root)} · {now} · "
             f"rstsweep {h.esc(__version__)}</div>"]  # fmt: skip
    if status:
        live = status.get("live_run")
        run = (
            f"live run: sweep {live.get('sweep')}, pid {live.get('pid')}" if live else "no live run"
        )
        lines.append(
            f"<p>{status['finished_cells']} finished cells · "
            f"{format_count(status['passes'])} forward-backward passes · "
            f"{format_duration(status['train_time_s'])} of training · {h.esc(run)}</p>"
        )
    lines += [f"<p class='note'>{h.esc(n)}</p>" for n in notes]
    return "".join(lines)


def _state(state: str) -> h.Cell:
    return h.Cell(markup=f"<span class='{h.esc(state)}'>{h.esc(state)}</span>", sort=state)


def _status_section(status: dict[str, object] | None) -> str:
    if not status or not status["sweeps"]:
        return "<p>No sweep recorded in this store yet.</p>"
    parts = []
    for sw in status["sweeps"]:
        name = sw["sweep"]
        heading = (
            f"{name} · profile {', '.join(sw['profiles']) or '?'} · cells from {sw['cells_from']}"
        )
        rows = [_group_row(g) for g in [*sw["groups"], sw["total"]]]
        headers = ["group", "cells", "done", "running", "failed", "pending", "passes", "Δη", "time"]
        parts.append(f"<h3>{h.esc(heading)}</h3>")
        parts.append(h.table(headers, rows, table_id=f"status-{_slug(name)}"))
        parts.append(_open_cells(name, sw["open_cells"]))
    return "".join(parts)


def _group_row(g: dict[str, object]) -> list[h.CellLike]:
    extra = g["realized_extra"]
    time_s = g["train_time_s"] if g["done"] else None
    return [
        g["group"],
        g["cells"],
        g["done"],
        g["running"],
        g["failed"],
        g["pending"],
        h.Cell(format_count(g["passes"]), g["passes"]),
        "-" if extra is None else f"{extra:.3f}",
        h.Cell(format_duration(time_s), time_s if time_s is not None else -1),
    ]


def _open_cells(sweep: str, cells: list[dict[str, object]]) -> str:
    if not cells:
        return "<p class='note'>Every cell is done.</p>"
    rows = []
    for c in cells[:OPEN_CELLS_SHOWN]:
        settings = " ".join(f"{k}={v}" for k, v in c["settings"].items())
        error = str(c["error"] or "").strip()
        last = error.splitlines()[-1] if error else ""
        shown = h.details(last, f"<pre>{h.esc(error)}</pre>") if error else ""
        row = [c["cell_id"], c["group"], c["label"], _state(c["state"]), settings, c["attempts"]]
        rows.append([*row, h.Cell(markup=shown, sort=last)])
    headers = ["cell_id", "group", "label", "state", "settings", "attempts", "last error"]
    more = len(cells) - OPEN_CELLS_SHOWN
    caption = f"{more} more not shown (rstsweep status {sweep} --pending)" if more > 0 else ""
    markup = h.table(headers, rows, table_id=f"open-{_slug(sweep)}", caption=caption)
    counts = pd.Series([c["state"] for c in cells]).value_counts()
    summary = "cells not done: " + ", ".join(f"{n} {state}" for state, n in counts.items())
    return h.details(summary, markup, open_=len(cells) <= OPEN_SHOWN_OPEN)


def _plan_section(plans: Sequence[dict[str, object]]) -> str:
    if not plans:
        return "<p class='note'>No plan: the sweeps file does not describe these sweeps.</p>"
    parts = []
    for plan in plans:
        what = (
            f"{', '.join(plan['models'])} × {', '.join(plan['datasets'])} × {plan['seeds']} seed(s)"
        )
        parts.append(
            f"<h3>{h.esc(plan['sweep'])} · profile {h.esc(plan['profile'])} · {h.esc(what)}</h3>"
        )
        headers = ["group", "cells", "done", "pending", "E[Δη]", "passes", "est. time left"]
        rows = [_plan_row(g) for g in [*plan["groups"], plan["total"]]]
        parts.append(h.table(headers, rows, table_id=f"plan-{_slug(plan['sweep'])}"))
    parts.append(
        "<p class='note'>Time left: pending cells × measured step costs of the same model, data "
        "set and batch size (~: from step-cost probes, an estimate); training only, one cell at a "
        "time. '-': nothing measured yet.</p>"
    )
    return "".join(parts)


def _plan_row(g: dict[str, object]) -> list[h.CellLike]:
    left = g["pending_time_s"]
    if not g["pending"]:
        time_text = "done"
    else:
        time_text = ("~" if g["probed"] and left is not None else "") + format_duration(left)
    return [
        g["group"],
        g["cells"],
        g["done"],
        g["pending"],
        f"{g['expected_extra']:.3f}",
        h.Cell(format_count(g["passes"]), g["passes"]),
        h.Cell(time_text, -1 if left is None else left),
    ]


def _figures(res: Results, note: Note) -> dict[str, str]:
    """Each figure the store can feed, as inline SVG (the figures' own style)."""
    out = {}
    with matplotlib.rc_context(STYLE):
        for name, draw in FIGURES.items():
            fig = draw(res, note)
            if fig is not None:
                out[name] = h.svg(fig)
    return out


def _figure(name: str, markup: str) -> str:
    caption = name.replace("figure", "Figure ") if name.startswith("figure") else "Pareto view"
    return f"<figure>{markup}<figcaption>{h.esc(caption)}</figcaption></figure>"


def _figures_section(figures: dict[str, str], notes: list[str]) -> str:
    shown = [_figure(n, m) for n, m in figures.items() if n not in PARETO]
    text = "".join(f"<p class='note'>{h.esc(n)}</p>" for n in notes)
    return ("".join(shown) or "<p>No figure: no finished cells of a tagged sweep yet.</p>") + text


def _pareto_section(figures: dict[str, str], tables: list[Table]) -> str:
    parts = [_figure("pareto", figures["pareto"])] if "pareto" in figures else []
    parts += [_table_markup(t) for t in tables if t.name == "best_at_budget"]
    if not parts:
        return "<p>The Pareto view needs finished cells of two or more schedule families.</p>"
    return "".join(parts)


def _tables_section(tables: list[Table]) -> str:
    return "".join(_table_markup(t) for t in tables) or "<p>No table: no finished cells yet.</p>"


def _table_markup(t: Table) -> str:
    """An `analysis.table.Table` as HTML: its title, its shown columns, its notes."""
    shown = t.display()
    notes = "".join(f"<p class='note'>{h.esc(n)}</p>" for n in t.notes)
    if shown.empty:
        return f"<h3>{h.esc(t.title)}</h3><p class='note'>no rows</p>{notes}"
    rows = shown.astype(str).itertuples(index=False, name=None)
    return (
        f"<h3>{h.esc(t.title)}</h3>" + h.table(list(shown.columns), rows, table_id=t.name) + notes
    )


def _cells_section(res: Results) -> str:
    trials = res.trials.sort_values(["sweep", "group", "cell_id"], kind="stable")
    if trials.empty:
        return "<p>No finished cell yet.</p>"
    rows = [_cell_row(row) for row in trials.to_dict("records")]
    headers = [
        "cell_id",
        "sweep",
        "group",
        "label",
        "seed",
        "test error %",
        "Δη",
        "time",
        "manifest",
    ]
    return h.table(headers, rows, table_id="cells")


def _cell_row(row: dict[str, object]) -> list[h.CellLike]:
    error = row.get("test_error")
    extra = row.get("realized_extra")
    ok = error is not None and not pd.isna(error)
    return [
        row["cell_id"],
        row["sweep"],
        row["group"],
        row["label"],
        row["seed"],
        h.Cell(f"{100 * error:.2f}" if ok else str(row.get("status")), error if ok else -1),
        "-" if extra is None or pd.isna(extra) else f"{extra:.3f}",
        h.Cell(
            format_duration(row["train_time_s"]) if ok else "-", row["train_time_s"] if ok else -1
        ),
        h.Cell(markup=h.details("manifest", f"<pre>{h.esc(_manifest_json(row))}</pre>")),
    ]


def _manifest_json(row: dict[str, object]) -> str:
    """What reproduces the cell: its full config, package versions, device and the attempt."""
    keys = ("attempt_id", "profile", "finished_at", *MANIFEST_KEYS)
    out = {k: _plain(row.get(k)) for k in keys}
    out["config"] = _loads(row.get("config_json"))
    out["versions"] = _loads(row.get("versions"))
    return json.dumps(out, indent=1, sort_keys=False, ensure_ascii=False, default=str)


def _loads(text: object) -> object:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return text


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name).strip("-") or "sweep"
