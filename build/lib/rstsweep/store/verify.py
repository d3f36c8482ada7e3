"""`rstsweep verify [--repair]`: check a store's part files and that every done cell is whole.

Checks, in order:
1. every part file of every table reads under the table's declared schema (a truncated copy, a
   full disk, a foreign file);
2. every trials row (a cell's "done" marker) has its attempt's rows: a draws row with the same
   number of steps, and epochs 1..n without gaps whose last cumulative step count equals the
   trial's (n equals the trial's epochs unless it diverged and stopped early).

`--repair` never deletes: an unreadable part is moved to `<store>/.quarantine/<table>/`; a trials
part holding rows that fail check 2 is rewritten without them (a new part is written first, then
the old one is moved to quarantine, so a crash in between leaves duplicates that readers dedupe).
Cells left without a whole trials row are pending again: the next `rstsweep run` trains them.
When a trials part itself was unreadable its cell_ids are unknown; the report then lists the
cells whose epochs/draws rows are left without a trials row (what that part most likely held).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from rstsweep.store.files import check_part, part_files, read_files
from rstsweep.store.schema import TABLES
from rstsweep.store.store import Store

QUARANTINE = ".quarantine"


@dataclass
class VerifyReport:
    store: str
    files: int = 0  # part files checked
    trials: int = 0  # trials rows checked
    bad_files: list[tuple[str, str]] = field(default_factory=list)  # (path shown, reason)
    bad_rows: list[tuple[str, str]] = field(default_factory=list)  # (cell_id, reason)
    repaired: bool = False
    moved: list[tuple[str, str]] = field(default_factory=list)  # (from, to), as shown
    pending_again: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.bad_files) + len(self.bad_rows)


def verify_store(store: Store, *, repair: bool = False) -> VerifyReport:
    """Run the checks (see the module docstring); with `repair`, quarantine what fails them."""
    loc = store.location
    report = VerifyReport(store=loc.text, repaired=repair)
    good: dict[str, list[str]] = {}
    bad_tables: set[str] = set()
    for name, schema in TABLES.items():
        good[name] = []
        for path in part_files(loc, name):
            report.files += 1
            reason = check_part(loc, path, schema)
            if reason is None:
                good[name].append(path)
            else:
                report.bad_files.append((loc.display(path), reason))
                bad_tables.add(name)
                if repair:
                    _quarantine(store, name, path, report)
    trials = read_files(loc, good["trials"], TABLES["trials"]).to_pandas()
    trials["_file"] = _file_column(loc, good["trials"])
    report.trials = len(trials)
    bad = _inconsistent(trials, _rows(store, good, "epochs"), _rows(store, good, "draws"))
    report.bad_rows = [(cid, f"attempt {aid}: {why}") for (cid, aid), why in bad.items()]
    if repair:
        _rewrite_trials(store, trials, set(bad), report)
        cells = {cid for cid, _ in bad}
        report.pending_again = _pending_again(store, cells, "trials" in bad_tables, good)
    return report


def _rows(store: Store, good: dict[str, list[str]], name: str) -> pd.DataFrame:
    return read_files(store.location, good[name], TABLES[name]).to_pandas()


def _file_column(loc, files: list[str]) -> list[str]:
    """The part file of each trials row, in read order (read_files keeps file order)."""
    out: list[str] = []
    for path in files:
        out += [path] * read_files(loc, [path], TABLES["trials"], ["cell_id"]).num_rows
    return out


def _inconsistent(
    trials: pd.DataFrame, epochs: pd.DataFrame, draws: pd.DataFrame
) -> dict[str, str]:
    """(cell_id, attempt_id) -> why, for the trials rows that are not whole."""
    epochs = epochs.drop_duplicates(["cell_id", "attempt_id", "epoch"])
    ep = epochs.groupby(["cell_id", "attempt_id"]).agg(
        n=("epoch", "size"),
        first=("epoch", "min"),
        last=("epoch", "max"),
        unique=("epoch", "nunique"),
        steps=("steps", "max"),
    )
    dr = draws.drop_duplicates(["cell_id", "attempt_id"]).set_index(["cell_id", "attempt_id"])
    bad: dict[tuple[str, str], str] = {}
    for row in trials.itertuples(index=False):
        key = (row.cell_id, row.attempt_id)
        if key not in dr.index:
            why = "no draws row for its attempt"
        elif int(dr.loc[key, "steps"]) != int(row.steps):
            why = f"draws hold {int(dr.loc[key, 'steps'])} steps, the trial {int(row.steps)}"
        elif key not in ep.index:
            why = "no epochs rows for its attempt"
        else:
            why = _epochs_problem(ep.loc[key], row)
        if why:
            bad.setdefault(key, why)
    return bad


def _epochs_problem(e: pd.Series, row) -> str | None:
    if int(e["first"]) != 1 or int(e["unique"]) != int(e["n"]) or int(e["last"]) != int(e["n"]):
        span = f"{int(e['first'])}..{int(e['last'])}"
        return f"epochs rows are not 1..n ({int(e['n'])} rows, epochs {span})"
    if row.status == "ok" and pd.notna(row.epochs) and int(e["n"]) != int(row.epochs):
        return f"{int(e['n'])} epochs rows for a {int(row.epochs)}-epoch trial"
    if pd.notna(e["steps"]) and int(e["steps"]) != int(row.steps):
        return f"last epoch counts {int(e['steps'])} steps, the trial {int(row.steps)}"
    return None


def _quarantine(store: Store, table: str, path: str, report: VerifyReport) -> None:
    loc = store.location
    target = loc.path(QUARANTINE, table, path.rsplit("/", 1)[-1])
    loc.move(path, target)
    report.moved.append((loc.display(path), loc.display(target)))


def _rewrite_trials(
    store: Store, trials: pd.DataFrame, bad_keys: set[tuple[str, str]], report: VerifyReport
) -> None:
    """Move every trials part holding a bad row to quarantine, after writing its good rows anew."""
    keys = list(zip(trials["cell_id"], trials["attempt_id"], strict=True))
    files = {f for f, k in zip(trials["_file"], keys, strict=True) if k in bad_keys}
    for path in sorted(files):
        table = read_files(store.location, [path], TABLES["trials"])
        ids = zip(table["cell_id"].to_pylist(), table["attempt_id"].to_pylist(), strict=True)
        keep = [i for i, k in enumerate(ids) if k not in bad_keys]
        if keep:
            store.write_table("trials", table.take(pa.array(keep, type=pa.int64())))
        _quarantine(store, "trials", path, report)


def _pending_again(
    store: Store, bad_cells: set[str], trials_lost: bool, good: dict[str, list[str]]
) -> list[str]:
    """Cells that were done (or whose trials part was lost) and are not done now."""
    done = Store(store.location, read_only=True).done_ids()  # a fresh reader: parts moved
    lost = {cid for cid in bad_cells if cid not in done}
    if trials_lost:
        attempts = pd.concat([_rows(store, good, "epochs"), _rows(store, good, "draws")])
        lost |= set(attempts["cell_id"]) - done
    return sorted(lost)


def print_report(report: VerifyReport) -> None:
    """Plain lines: what was checked, each problem, what was moved, which cells are pending."""
    print(f"{report.store}: {report.files} part files, {report.trials} trials rows checked")
    for path, reason in report.bad_files:
        print(f"unreadable: {path}: {reason}")
    for cell_id, reason in report.bad_rows:
        print(f"incomplete cell {cell_id}: {reason}")
    for source, target in report.moved:
        print(f"moved {source} -> {target}")
    if report.repaired and report.problems:
        cells = ", ".join(report.pending_again) or "none"
        print(
            f"{len(report.pending_again)} cells pending again (the next run trains them): {cells}"
        )
    if not report.problems:
        print("ok: no problems found")
    elif not report.repaired:
        print(f"{report.problems} problems; `rstsweep verify --repair` quarantines them")
