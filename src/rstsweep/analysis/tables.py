"""The paper's tables from a result store, as markdown, CSV or LaTeX text (no torch, no ray).

`make_tables(store, fmt)` returns {name: text} for every table the store can fill:
    table1_baselines               SGD and SAM (any sweep): error, time, Δη
    table2_schedules               the scheduling functions (rstsweep.schedules.table)
    table3_g_rst … table13_mixing  the sweeps of DESIGN §3 that are in the store
    sweep_<name>                   every other sweep (constant, piecewise-1, p-gamma, a demo, …)
    paper_vs_here                  the paper's reported numbers (data/paper_numbers.csv) beside ours
    ordering                       our own check of the paper's ordering SGD > RST > SAM
Test error is in % (mean ± std over seeds; no ± for one seed), Δη expected and realized, train
time, extra wall time relative to the SGD cell of the same setting and seed, number of seeds.
CSV carries the raw numbers (one column per mean and std) for scripts.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from rstsweep.analysis.results import (
    DATASET_ORDER,
    MODEL_ORDER,
    TRIG_FAMILIES,
    Results,
    display_dataset,
    display_model,
    load,
)
from rstsweep.errors import RstError

FORMATS = ("md", "csv", "latex")
EXTENSIONS = {"md": "md", "csv": "csv", "latex": "tex"}
_ROLE_ORDER = {"sgd": 0, "rst": 1, "sam": 2}


@dataclass(frozen=True)
class TableSpec:
    """A numbered table: its title, the sweep that feeds it and an optional row filter."""

    name: str
    title: str
    sweep: str
    keep: Callable[[pd.DataFrame], pd.Series] | None = None


def _family(*families: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c["family"].isin(families) | c["role"].isin(["sgd", "sam"])


def _model(prefix: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda c: c["model"].astype(str).str.startswith(prefix)


SPECS = (
    TableSpec("table3_g_rst", "Table 3: SGD, SAM and G-RST (p = 0.5, α = 2)", "g-rst"),
    TableSpec("table4_imagenet", "Table 4: ImageNet (SGD, SAM, G-RST)", "imagenet"),
    TableSpec("table5_trigonometric", "Table 5: trigonometric schedules", "trigonometric"),
    TableSpec("table6_cutout_constant", "Table 6: Cutout, constant", "cutout", _family("constant")),
    TableSpec(
        "table7_cutout_piecewise", "Table 7: Cutout, piecewise 1", "cutout", _family("piecewise")
    ),
    TableSpec("table8_cutout_linear", "Table 8: Cutout, linear 1", "cutout", _family("linear")),
    TableSpec(
        "table9_cutout_trigonometric",
        "Table 9: Cutout, trigonometric",
        "cutout",
        _family(*TRIG_FAMILIES),
    ),
    TableSpec("table10_vgg16_bn", "Table 10: VGG16-BN, constant", "other-models", _model("vgg")),
    TableSpec("table11_vit_s16", "Table 11: ViT-S16, constant", "other-models", _model("vit")),
    TableSpec("table12_variants", "Table 12: ASAM / GSAM, plain, RST, G-RST", "variants"),
    TableSpec("table13_mixing", "Table 13: RST mixed with LookSAM, ESAM, SSAM", "mixing"),
)


def make_tables(
    store: str | os.PathLike[str], fmt: str = "md", results: Results | None = None
) -> dict[str, str]:
    """Every table the store can fill, rendered in `fmt` (md, csv or latex)."""
    if fmt not in FORMATS:
        raise RstError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    res = results if results is not None else load(store)
    out: dict[str, str] = {}
    for name, title, frame, notes in build_tables(res):
        out[name] = render(frame, fmt, title, notes)
    return out


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


def build_tables(res: Results) -> list[tuple[str, str, pd.DataFrame, list[str]]]:
    """(name, title, frame, notes) of every fillable table; frames hold raw numbers."""
    tables = []
    ends = res.unique_cases(res.cases[res.cases["role"].isin(["sgd", "sam"])])
    if len(ends):
        frame = case_frame(ends.assign(group=None))  # shared endpoints: their group is noise
        tables.append(("table1_baselines", "Table 1: SGD and SAM", frame, []))
    tables.append(("table2_schedules", _table2_title(res), schedules_frame(_steps(res)), []))
    used: set[str] = set()
    for spec in SPECS:
        cases = res.sweep_cases([spec.sweep])
        if spec.keep is not None and len(cases):
            cases = cases[spec.keep(cases)]
        if cases.empty:
            continue
        used.add(spec.sweep)
        tables.append((spec.name, spec.title, case_frame(cases), _progress(res, [spec.sweep])))
    for sweep in res.sweeps:
        cases = res.sweep_cases([sweep])
        if sweep in used or cases.empty:
            continue
        title = f"Sweep {sweep}"
        tables.append((f"sweep_{_slug(sweep)}", title, case_frame(cases), _progress(res, [sweep])))
    tables.append(("paper_vs_here", "The paper's numbers vs this store", paper_vs_here(res), []))
    order = ordering_frame(res)
    if len(order):
        tables.append(
            ("ordering", "Ordering check: SGD > RST > SAM?", order, _ordering_notes(order))
        )
    return tables


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_") or "unnamed"


def _progress(res: Results, sweeps: list[str]) -> list[str]:
    done, total = res.progress(sweeps)
    return [f"partial: {done} of {total} cells finished"] if done < total else []


def _steps(res: Results) -> int:
    steps = res.trials["steps"].dropna()
    return int(steps.mode().iloc[0]) if len(steps) else 1000


def _table2_title(res: Results) -> str:
    return f"Table 2: scheduling functions (Δη discrete at T = {_steps(res)})"


# ----------------------------------------------------------------------------- frames


def _sort(cases: pd.DataFrame) -> pd.DataFrame:
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    drank = {d: i for i, d in enumerate(DATASET_ORDER)}
    key = cases.assign(
        _m=cases["model"].map(rank).fillna(len(rank)),
        _d=cases["dataset"].map(drank).fillna(len(drank)),
        _r=cases["role"].map(_ROLE_ORDER),
    )
    cols = ["_m", "model", "_d", "dataset", "setting", "_r", "group", "expected_extra", "param_a"]
    cols.append("param_b")
    return key.sort_values(cols, na_position="first", kind="stable").drop(
        columns=["_m", "_d", "_r"]
    )


def case_name(cases: pd.DataFrame) -> pd.Series:
    """The sweep's label of the case, else SGD / SAM / '<algorithm> <schedule>'."""
    derived = cases["algorithm"].astype(str).str.upper() + " " + cases["schedule"].astype(str)
    derived = derived.where(cases["role"] == "rst", cases["role"].str.upper())
    return cases["label"].where(cases["label"].notna() & (cases["label"] != ""), derived)


def method_name(cases: pd.DataFrame) -> pd.Series:
    """Algorithm of the sharpness-aware branch, with α when it is not 1 (G-RST)."""
    alpha = cases["alpha"].astype(float)
    suffix = np.where(np.isclose(alpha.fillna(1.0), 1.0), "", " α=" + alpha.map("{:g}".format))
    return cases["algorithm"].astype(str).str.upper() + suffix


def case_frame(cases: pd.DataFrame) -> pd.DataFrame:
    """The raw-number table of some aggregated cases (one row per sweep/group/case)."""
    cases = _sort(cases)
    return pd.DataFrame(
        {
            "model": cases["model"],
            "dataset": cases["dataset"],
            "augment": cases["augment"],
            "group": cases["group"],
            "case": case_name(cases),
            "method": method_name(cases),
            "schedule": cases["schedule"],
            "expected_extra": cases["expected_extra"],
            "realized_extra_mean": cases["realized_extra_mean"],
            "realized_extra_std": cases["realized_extra_std"],
            "test_error_pct_mean": cases["test_error_mean"] * 100,
            "test_error_pct_std": cases["test_error_std"] * 100,
            "train_time_s_mean": cases["train_time_s_mean"],
            "train_time_s_std": cases["train_time_s_std"],
            "extra_time_pct_mean": cases["extra_time_mean"] * 100,
            "extra_time_pct_std": cases["extra_time_std"] * 100,
            "n_seeds": cases["n_seeds"].astype(int),
            "n_diverged": cases["n_diverged"].astype(int),
            "epochs": cases["epochs"],
            "train_subset": cases["train_subset"],
            "label_noise": cases["label_noise"],
        }
    ).reset_index(drop=True)


def schedules_frame(steps: int) -> pd.DataFrame:
    """Table 2 via `rstsweep.schedules.table.schedule_rows` (one example per family)."""
    from rstsweep.schedules.table import schedule_rows

    rows = pd.DataFrame(schedule_rows(steps))
    return pd.DataFrame(
        {
            "family": rows["family"],
            "p(τ)": rows["formula"],
            "example": rows["spec"],
            "closed_form": rows["closed_form_formula"].fillna(""),
            "closed_form_extra": rows["closed_form_extra"],
            "expected_extra": rows["expected_extra"],
        }
    )


# ----------------------------------------------------------------------------- paper vs here


def paper_numbers() -> pd.DataFrame:
    """The numbers the paper reports (package data `paper_numbers.csv`, with their source)."""
    text = resources.files("rstsweep").joinpath("data/paper_numbers.csv").read_text("utf-8")
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, dtype=str)
    for col in ("value", "std"):
        frame[col] = pd.to_numeric(frame[col].replace("", np.nan))
    return frame


def _rst_plain(cases: pd.DataFrame) -> pd.Series:
    """RST proper: the SAM branch, α = 1, basic augmentation (the paper's main setting)."""
    alpha = cases["alpha"].astype(float).fillna(1.0)
    return (cases["algorithm"] == "sam") & np.isclose(alpha, 1.0) & (cases["augment"] != "cutout")


def _ours(res: Results, quantity: str, case: str, model: str, dataset: str):
    """(mean, std, n_seeds, epochs) of our value for one paper row and (model, dataset), or None."""
    from rstsweep.schedules import parse

    cases = res.unique_cases()
    cases = cases[(cases["model"] == model) & (cases["dataset"] == dataset)]
    kind, _, arg = case.partition(":")
    if kind == "schedule":
        hit = cases[_rst_plain(cases) & (cases["schedule"] == parse(arg).spec)]
    elif kind == "role":
        hit = cases[(cases["role"] == arg) & (cases["augment"] != "cutout")]
    elif kind in ("best", "group"):
        rows = res.cases[(res.cases["gkey"] == arg) & (res.cases["role"] == "rst")]
        hit = rows[(rows["model"] == model) & (rows["dataset"] == dataset) & _rst_plain(rows)]
        if kind == "best" and len(hit):
            hit = hit.nsmallest(1, "test_error_mean")
    else:
        return None
    hit = hit.dropna(subset=["test_error_mean"])
    if hit.empty:
        return None
    return _quantity(res, quantity, hit, cases)


def _quantity(res: Results, quantity: str, hit: pd.DataFrame, cases: pd.DataFrame):
    first = hit.iloc[0]
    meta = (int(hit["n_seeds"].max()), int(first["epochs"]))
    if quantity == "test_error":
        return first["test_error_mean"] * 100, first["test_error_std"] * 100, *meta
    if quantity == "extra_time_pct":
        return first["extra_time_mean"] * 100, first["extra_time_std"] * 100, *meta
    if quantity == "extra_time_min":
        rows = res.joined[res.joined["case_id"].isin(hit["case_id"])]
        minutes = rows.drop_duplicates("cell_id")["extra_time_s"] / 60
        return minutes.mean(), minutes.std(), *meta
    if quantity == "saving_pct":
        sam = cases[(cases["role"] == "sam") & (cases["setting"] == first["setting"])]
        if sam.empty or not sam["extra_time_mean"].iloc[0]:
            return None
        return 100 * (1 - first["extra_time_mean"] / sam["extra_time_mean"].iloc[0]), np.nan, *meta
    if quantity == "step_time_s":
        col = "sa_step_s" if first["role"] == "sam" else "sgd_step_s"
        return first[col], np.nan, *meta
    return None


def paper_vs_here(res: Results) -> pd.DataFrame:
    """One row per paper number and matching (model, dataset) of ours ('—' when absent); an
    empty model/dataset in the data file matches any model/dataset of the store."""
    pairs = res.unique_cases()[["model", "dataset"]].drop_duplicates()
    here = ", ".join(f"{m}/{d}" for m, d in pairs.itertuples(index=False)) or "nothing"
    rows = []
    for p in paper_numbers().itertuples(index=False):
        match = pairs[
            ((pairs["model"] == p.model) | (p.model == ""))
            & ((pairs["dataset"] == p.dataset) | (p.dataset == ""))
        ]
        found = False
        for model, dataset in match.itertuples(index=False):
            ours = _ours(res, p.quantity, p.case, model, dataset)
            if ours is not None:
                rows.append(_pv_row(p, model, dataset, ours, "here: this store"))
                found = True
        if not found:
            rows.append(_pv_row(p, p.model, p.dataset, None, f"not in store (store has: {here})"))
    return pd.DataFrame(rows)


def _pv_row(p, model: str, dataset: str, ours, note: str) -> dict:
    mean, std, seeds, epochs = ours if ours is not None else (np.nan, np.nan, 0, None)
    here = f"{seeds} seed(s), {epochs} epochs" if ours is not None else note
    return {
        "quantity": p.quantity,
        "model": model or "any",
        "dataset": dataset or "any",
        "case": p.case,
        "unit": p.unit,
        "paper": p.value,
        "paper_std": p.std,
        "here": mean,
        "here_std": std,
        "paper_setting": p.paper_setting,
        "here_setting": here,
        "source": p.source,
    }


# ----------------------------------------------------------------------------- ordering check


def ordering_frame(res: Results) -> pd.DataFrame:
    """For every setting with SGD, SAM and constant-schedule RST cells: does SGD > RST > SAM hold
    for the mean test error of each RST case?"""
    cases = res.unique_cases()
    rst = cases[_rst_plain(cases) & (cases["role"] == "rst") & (cases["family"] == "constant")]
    ends = cases[cases["role"].isin(["sgd", "sam"])].drop_duplicates(["setting", "role"])
    wide = ends.pivot(index="setting", columns="role", values="test_error_mean")
    wide_std = ends.pivot(index="setting", columns="role", values="test_error_std")
    if not {"sgd", "sam"} <= set(wide.columns) or rst.empty:
        return pd.DataFrame()
    rst = rst.join(wide[["sgd", "sam"]], on="setting").dropna(subset=["sgd", "sam"])
    rst = rst.join(wide_std[["sgd", "sam"]].add_suffix("_std"), on="setting")
    rst = _sort(rst)
    err = rst["test_error_mean"]
    return pd.DataFrame(
        {
            "model": rst["model"],
            "dataset": rst["dataset"],
            "case": case_name(rst),
            "expected_extra": rst["expected_extra"],
            "sgd_pct": rst["sgd"] * 100,
            "sgd_pct_std": rst["sgd_std"] * 100,
            "rst_pct": err * 100,
            "rst_pct_std": rst["test_error_std"] * 100,
            "sam_pct": rst["sam"] * 100,
            "sam_pct_std": rst["sam_std"] * 100,
            "sgd_gt_rst_gt_sam": (rst["sgd"] > err) & (err > rst["sam"]),
            "n_seeds": rst["n_seeds"].astype(int),
        }
    ).reset_index(drop=True)


def _ordering_notes(order: pd.DataFrame) -> list[str]:
    notes = []
    for (model, dataset), g in order.groupby(["model", "dataset"], sort=False):
        holds = int(g["sgd_gt_rst_gt_sam"].sum())
        gain = g["sgd_pct"].iloc[0] - g["sam_pct"].iloc[0]
        stds = [g["sgd_pct_std"].iloc[0], g["sam_pct_std"].iloc[0]]
        spread = (
            "one seed: no spread over seeds"
            if all(pd.isna(stds))
            else f"largest std over seeds {np.nanmax(stds):.2f}"
        )
        verdict = "SAM beats SGD" if gain > 0 else "SAM does NOT beat SGD"
        notes.append(
            f"{display_model(model)} · {display_dataset(dataset)}: SGD > RST > SAM holds for "
            f"{holds} of {len(g)} RST cases; {verdict} by {gain:+.2f} points ({spread})."
        )
    return notes


# ----------------------------------------------------------------------------- rendering


def render(frame: pd.DataFrame, fmt: str, title: str, notes: list[str] | None = None) -> str:
    """`frame` as csv (raw numbers) or as a readable md/latex table (mean ± std merged)."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    shown = display_frame(frame)
    if fmt == "md":
        return _markdown(shown, title, notes or [])
    return _latex(shown, title, notes or [])


def _pm(mean: pd.Series, std: pd.Series, digits: int) -> pd.Series:
    """'m ± s' ('m' alone for one seed, '—' when there is no value)."""
    m = mean.astype(float)
    s = std.astype(float)
    text = m.map(lambda v: "—" if pd.isna(v) else f"{v:.{digits}f}")
    with_std = text + " ± " + s.map(lambda v: f"{v:.{digits}f}")
    return with_std.where(s.notna() & m.notna(), text)


def _time(mean: pd.Series, std: pd.Series) -> pd.Series:
    """Seconds, minutes or hours, whichever reads best for each row."""
    out = []
    for m, s in zip(mean.astype(float), std.astype(float), strict=True):
        if pd.isna(m):
            out.append("—")
            continue
        unit, div = ("s", 1) if m < 120 else ("min", 60) if m < 7200 else ("h", 3600)
        digits = 3 if m < 1 else 1  # CI-sized runs take fractions of a second
        std_text = "" if pd.isna(s) else f" ± {s / div:.{digits}f}"
        out.append(f"{m / div:.{digits}f}{std_text} {unit}")
    return pd.Series(out, index=mean.index, dtype=object)


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Human columns for md/latex: mean ± std merged, names shown as in the paper."""
    if frame.empty:
        return frame
    if "test_error_pct_mean" in frame.columns:
        return _display_cases(frame)
    if "paper" in frame.columns:
        return _display_paper(frame)
    if "sgd_gt_rst_gt_sam" in frame.columns:
        return _display_ordering(frame)
    shown = frame.copy()
    for col in ("closed_form_extra", "expected_extra"):
        shown[col] = shown[col].map("{:.4f}".format)
    return shown.rename(
        columns={"closed_form_extra": "Δη closed form", "expected_extra": "Δη discrete"}
    )


def _display_cases(frame: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame(
        {
            "model": frame["model"].map(display_model),
            "dataset": frame["dataset"].map(display_dataset),
            "group": frame["group"].fillna(""),
            "case": frame["case"],
            "method": frame["method"],
            "Δη": frame["expected_extra"].map(lambda v: "—" if pd.isna(v) else f"{v:.3f}"),
            "Δη realized": _pm(frame["realized_extra_mean"], frame["realized_extra_std"], 3),
            "test error (%)": _pm(frame["test_error_pct_mean"], frame["test_error_pct_std"], 2),
            "train time": _time(frame["train_time_s_mean"], frame["train_time_s_std"]),
            "extra time vs SGD (%)": _pm(
                frame["extra_time_pct_mean"], frame["extra_time_pct_std"], 1
            ),
            "seeds": frame["n_seeds"].astype(str)
            + np.where(
                frame["n_diverged"] > 0, " (+" + frame["n_diverged"].astype(str) + " div.)", ""
            ),
        }
    )
    if shown["group"].nunique() <= 1:
        shown = shown.drop(columns="group")
    setting = _setting_text(frame)
    if setting.nunique() > 1:  # e.g. Cutout next to basic, or a ci run next to the demo
        shown.insert(2, "setting", setting)
    return shown


def _setting_text(frame: pd.DataFrame) -> pd.Series:
    """'basic, 200 ep' (+ ', n=5000' for a training subset, ', noise 0.2' for label noise)."""
    text = frame["augment"].astype(str) + ", " + frame["epochs"].astype("Int64").astype(str) + " ep"
    subset = frame["train_subset"].astype("Int64")
    text = text + np.where(subset.notna(), ", n=" + subset.astype(str), "")
    noise = frame["label_noise"].astype(float).fillna(0.0)
    return text + np.where(noise > 0, ", noise " + noise.map("{:g}".format), "")


def _display_paper(frame: pd.DataFrame) -> pd.DataFrame:
    digits = frame["unit"].map({"%": 2, "min": 1, "s": 3}).fillna(2).astype(int)

    def fmt(mean: pd.Series, std: pd.Series) -> list[str]:
        return [
            "—" if pd.isna(m) else f"{m:.{d}f}" + ("" if pd.isna(s) else f" ± {s:.{d}f}")
            for m, s, d in zip(mean, std, digits, strict=True)
        ]

    unit = " " + frame["unit"]
    return pd.DataFrame(
        {
            "quantity": frame["quantity"],
            "model": frame["model"].map(display_model),
            "dataset": frame["dataset"].map(display_dataset),
            "case": frame["case"],
            "paper": pd.Series(fmt(frame["paper"], frame["paper_std"]), index=frame.index) + unit,
            "here": [
                "—" if h == "—" else h + u
                for h, u in zip(fmt(frame["here"], frame["here_std"]), unit, strict=True)
            ],
            "paper setting": frame["paper_setting"],
            "here setting": frame["here_setting"],
            "source": frame["source"],
        }
    )


def _display_ordering(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": frame["model"].map(display_model),
            "dataset": frame["dataset"].map(display_dataset),
            "RST case": frame["case"],
            "Δη": frame["expected_extra"].map("{:.3f}".format),
            "SGD (%)": _pm(frame["sgd_pct"], frame["sgd_pct_std"], 2),
            "RST (%)": _pm(frame["rst_pct"], frame["rst_pct_std"], 2),
            "SAM (%)": _pm(frame["sam_pct"], frame["sam_pct_std"], 2),
            "SGD > RST > SAM": np.where(frame["sgd_gt_rst_gt_sam"], "yes", "no"),
            "seeds": frame["n_seeds"].astype(str),
        }
    )


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown(frame: pd.DataFrame, title: str, notes: list[str]) -> str:
    lines = [f"### {title}", ""]
    lines += [f"_{n}_" for n in notes] + ([""] if notes else [])
    if frame.empty:
        return "\n".join([*lines, "(no rows)", ""])
    cols = list(frame.columns)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δη": r"$\Delta\eta$",
    "α": r"$\alpha$",
    "γ": r"$\gamma$",
    "ρ": r"$\rho$",
    "τ": r"$\tau$",
    "π": r"$\pi$",
    "—": "---",
}


def latex_escape(text: object) -> str:
    """Escape LaTeX specials and map the few Greek/maths symbols the tables use."""
    out = []
    s = str(text)
    i = 0
    while i < len(s):
        for key in ("Δη", s[i]):
            if s.startswith(key, i) and key in _LATEX_ESCAPES:
                out.append(_LATEX_ESCAPES[key])
                i += len(key)
                break
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _latex(frame: pd.DataFrame, title: str, notes: list[str]) -> str:
    caption = latex_escape(" ".join([title, *notes]))
    if frame.empty:
        return f"% {caption}: no rows\n"
    cols = list(frame.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        r"\begin{tabular}{" + "l" * len(cols) + "}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    lines += [
        " & ".join(latex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)
    ]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
