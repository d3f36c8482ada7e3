"""A table that carries its own rendering: title, notes, raw numbers and display columns.

`Table.frame` holds the raw numbers (one column per mean and per std), which is what CSV gets, for
scripts. `Table.columns` say how each human column of the markdown/LaTeX rendering is made from
those numbers (mean ± std merged, names shown as in the paper); a column marked `hide_if_uniform`
is left out when every row shows the same text (one group, one setting). Number formatting goes
through `rstsweep.core.format`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rstsweep.core.format import format_mean_std

FORMATS = ("md", "csv", "latex")
EXTENSIONS = {"md": "md", "csv": "csv", "latex": "tex"}


@dataclass(frozen=True)
class Column:
    """One shown column: its header and how its text is made from the raw frame."""

    header: str
    text: Callable[[pd.DataFrame], Sequence[object] | pd.Series]
    hide_if_uniform: bool = False


@dataclass(frozen=True)
class Table:
    """A named table: `frame` (raw numbers) shown through `columns`, with title and notes."""

    name: str
    title: str
    frame: pd.DataFrame
    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def display(self) -> pd.DataFrame:
        """The human columns for md/latex (empty frame when there are no rows)."""
        if self.frame.empty:
            return pd.DataFrame()
        shown = {}
        for col in self.columns:
            values = pd.Series(list(col.text(self.frame)), index=self.frame.index, dtype=object)
            if col.hide_if_uniform and values.nunique() <= 1:
                continue
            shown[col.header] = values
        return pd.DataFrame(shown)

    def render(self, fmt: str) -> str:
        """The table as CSV (raw numbers), markdown or LaTeX text."""
        if fmt == "csv":
            return self.frame.to_csv(index=False)
        if fmt == "md":
            return markdown(self.display(), self.title, list(self.notes))
        if fmt == "latex":
            return latex(self.display(), self.title, list(self.notes))
        raise ValueError(f"unknown table format {fmt!r}")


# ----------------------------------------------------------------------------- column helpers


def raw(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    """A column shown as it is."""
    return lambda f: f[column]


def mean_std(mean: str, std: str, digits: int) -> Callable[[pd.DataFrame], list[str]]:
    """'m ± s' of two raw columns ('m' alone for one seed, '—' without a value)."""
    return lambda f: [
        format_mean_std(m, s, digits)
        for m, s in zip(f[mean].astype(float), f[std].astype(float), strict=True)
    ]


def fixed(column: str, digits: int) -> Callable[[pd.DataFrame], list[str]]:
    """A number with `digits` decimals ('—' without a value)."""
    return lambda f: [format_mean_std(v, None, digits) for v in f[column].astype(float)]


# ----------------------------------------------------------------------------- markdown


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(frame: pd.DataFrame, title: str, notes: list[str]) -> str:
    """A '### title' heading, italic notes and a pipe table ('(no rows)' when empty)."""
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


# ----------------------------------------------------------------------------- LaTeX

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
    "≤": r"$\leq$",
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


def latex(frame: pd.DataFrame, title: str, notes: list[str]) -> str:
    """A booktabs table with the title and notes as its caption ('% caption: no rows' if empty)."""
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
