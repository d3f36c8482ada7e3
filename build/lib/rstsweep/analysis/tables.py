"""The paper's tables from a result store, as markdown, CSV or LaTeX text (no torch, no ray).

`make_tables(store, fmt)` returns {name: text} for every table the store can fill:
    table1_baselines               SGD and SAM (any sweep): error, time, Δη
    table2_schedules               the scheduling functions (rstsweep.schedules.table)
    table3_g_rst … table13_mixing  the sweeps tagged `table: "Table N"` in sweeps.yaml
    sweep_<name>                   every other sweep (constant, piecewise-1, p-gamma, a demo, …)
    best_at_budget                 the best case within each compute budget (≥ 2 families)
    paper_vs_here                  the paper's reported numbers (data/paper_numbers.csv) beside ours
    ordering                       our own check of the paper's ordering SGD > RST > SAM
Every table is a `table.Table` that renders itself; CSV carries the raw numbers (one column per
mean and std) for scripts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rstsweep.analysis.case_tables import case_table, schedules_table
from rstsweep.analysis.ordering import ordering_table
from rstsweep.analysis.paper import paper_vs_here
from rstsweep.analysis.pareto import best_at_budget
from rstsweep.analysis.results import TRIG_FAMILIES, Results, load
from rstsweep.analysis.table import EXTENSIONS, FORMATS, Table
from rstsweep.core.format import format_share
from rstsweep.errors import RstError


@dataclass(frozen=True)
class TableSpec:
    """A numbered table: its name and title, the sweeps.yaml `table:` tag of the sweeps that feed
    it and an optional row filter (one tag may feed several tables, e.g. "Tables 6-9")."""

    name: str
    title: str
    tag: str
    keep: Callable[[pd.DataFrame], pd.Series] | None = None


def _family(*families: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c["family"].isin(families) | c["role"].isin(["sgd", "sam"])


def _model(prefix: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c["model"].astype(str).str.startswith(prefix)


CUTOUT, OTHER_MODELS = "Tables 6-9", "Tables 10-11"
SPECS = (
    TableSpec("table3_g_rst", "Table 3: SGD, SAM and G-RST (p = 0.5, α = 2)", "Table 3"),
    TableSpec("table4_imagenet", "Table 4: ImageNet (SGD, SAM, G-RST)", "Table 4"),
    TableSpec("table5_trigonometric", "Table 5: trigonometric schedules", "Table 5"),
    TableSpec("table6_cutout_constant", "Table 6: Cutout, constant", CUTOUT, _family("constant")),
    TableSpec(
        "table7_cutout_piecewise", "Table 7: Cutout, piecewise 1", CUTOUT, _family("piecewise")
    ),
    TableSpec("table8_cutout_linear", "Table 8: Cutout, linear 1", CUTOUT, _family("linear")),
    TableSpec(
        "table9_cutout_trigonometric",
        "Table 9: Cutout, trigonometric",
        CUTOUT,
        _family(*TRIG_FAMILIES),
    ),
    TableSpec("table10_vgg16_bn", "Table 10: VGG16-BN, constant", OTHER_MODELS, _model("vgg")),
    TableSpec("table11_vit_s16", "Table 11: ViT-S16, constant", OTHER_MODELS, _model("vit")),
    TableSpec("table12_variants", "Table 12: ASAM / GSAM, plain, RST, G-RST", "Table 12"),
    TableSpec("table13_mixing", "Table 13: RST mixed with LookSAM, ESAM, SSAM", "Table 13"),
)


def make_tables(
    store: str | os.PathLike[str], fmt: str = "md", results: Results | None = None
) -> dict[str, str]:
    """Every table the store can fill, rendered in `fmt` (md, csv or latex)."""
    if fmt not in FORMATS:
        raise RstError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    res = results if results is not None else load(store)
    return {table.name: table.render(fmt) for table in build_tables(res)}


def print_or_write_tables(
    store: str | os.PathLike[str], fmt: str = "md", out_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """The CLI's `tables`: print every table to stdout, or with `out_dir` write one file per
    table (`<name>.md|csv|tex`) and print their paths. Returns the paths written."""
    tables = make_tables(store, fmt)
    if out_dir is None:
        for name, text in tables.items():
            if fmt != "md":
                print(f"{'%' if fmt == 'latex' else '#'} {name}")
            print(text)
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in tables.items():
        path = out / f"{name}.{EXTENSIONS[fmt]}"
        path.write_text(text, encoding="utf-8")
        print(path)
        paths.append(path)
    return paths


def build_tables(res: Results) -> list[Table]:
    """Every table the store can fill, in the order the paper has them, then ours."""
    tables = []
    ends = res.unique_cases(res.cases[res.cases["role"].isin(["sgd", "sam"])])
    if len(ends):  # shared endpoints: their group is noise
        title = "Table 1: SGD and SAM"
        tables.append(case_table("table1_baselines", title, ends.assign(group=None)))
    tables.append(schedules_table(_steps(res)))
    used: set[str] = set()
    for spec in SPECS:
        sweeps = res.tagged(table=spec.tag)
        cases = res.sweep_cases(sweeps)
        if spec.keep is not None and len(cases):
            cases = cases[spec.keep(cases)]
        if cases.empty:
            continue
        used.update(sweeps)
        tables.append(case_table(spec.name, spec.title, cases, _progress(res, sweeps)))
    for sweep in res.sweeps:
        cases = res.sweep_cases([sweep])
        if sweep in used or cases.empty:
            continue
        title = f"Sweep {sweep}"
        tables.append(case_table(f"sweep_{_slug(sweep)}", title, cases, _progress(res, [sweep])))
    extras = [best_at_budget(res), paper_vs_here(res), ordering_table(res)]
    return tables + [t for t in extras if t is not None]


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_") or "unnamed"


def _progress(res: Results, sweeps: list[str]) -> list[str]:
    done, total = res.progress(sweeps)
    return [f"partial: {format_share(done, total)} finished"] if done < total else []


def _steps(res: Results) -> int:
    steps = res.trials["steps"].dropna()
    return int(steps.mode().iloc[0]) if len(steps) else 1000
