"""What each sweep feeds: the `figure:` / `table:` tags of sweeps.yaml and the Fig. 2 group number.

The store records them with the cells (`cells.figure`, `cells.table`, `cells.group_index`), and
figures and tables select their sweeps by these columns, so a new sweep tagged `figure: "Fig. 1"`
is drawn with no code change. Stores written before these columns existed (and trials rows whose
cell was never recorded) read them as nulls: `fill_missing_tags` fills such rows from the tags of
the sweeps.yaml shipped with rstsweep (package data `rstsweep/data/sweeps.yaml`), matched by
sweep and group name; rows that carry tags keep their own. The file is read by `rstsweep.sweeps`
(torch- and ray-free), the one parser of sweeps.yaml.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rstsweep.core.shipped import packaged_sweeps_file
from rstsweep.errors import RstError
from rstsweep.sweeps import SweepsFile, load_sweeps

TAG_COLUMNS = ("figure", "table", "group_index")


@dataclass(frozen=True)
class SweepTags:
    """Tags of one sweeps file: sweep -> figure/table, group name -> Fig. 2 group number."""

    figure: dict[str, str] = field(default_factory=dict)
    table: dict[str, str] = field(default_factory=dict)
    group_index: dict[str, int] = field(default_factory=dict)

    def of(self, sweep: str, group: str) -> tuple[str | None, str | None, int | None]:
        """(figure, table, group_index) of a cell of `sweep` in `group`."""
        return self.figure.get(sweep), self.table.get(sweep), self.group_index.get(group)


def sweep_tags(spec: SweepsFile) -> SweepTags:
    """The tags of a sweeps file. A group keeps its name when another sweep includes it, so its
    number is looked up by name; a name defined twice with different numbers has none."""
    tags = SweepTags()
    clash: set[str] = set()
    for name, body in spec.sweeps.items():
        if body.figure:
            tags.figure[name] = body.figure
        if body.table:
            tags.table[name] = body.table
        for gname, group in body.groups.items():
            if group.helper is None:  # only {piecewise_group: N, ...} / linear_group name a group
                continue
            index = int(group.helper[1])
            if tags.group_index.get(gname, index) != index:
                clash.add(gname)
            tags.group_index[gname] = index
    for gname in clash:
        del tags.group_index[gname]
    return tags


def shipped_sweeps_file() -> Path | None:
    """The sweeps.yaml shipped with rstsweep (`core.shipped`), or None if it is missing."""
    packaged = packaged_sweeps_file()
    return packaged if packaged.is_file() else None


@functools.cache
def shipped_tags() -> SweepTags:
    """`sweep_tags` of `shipped_sweeps_file()` (empty if there is none or it does not parse)."""
    path = shipped_sweeps_file()
    if path is None:
        return SweepTags()
    try:
        return sweep_tags(load_sweeps(path))
    except (OSError, RstError):
        return SweepTags()


def fill_missing_tags(frame: pd.DataFrame, tags: SweepTags | None = None) -> pd.DataFrame:
    """`frame` (with sweep and group columns) with null or absent tag columns filled from `tags`
    (default: the shipped sweeps.yaml's); tags a row carries are kept."""
    tags = shipped_tags() if tags is None else tags
    out = frame.copy()
    for col in TAG_COLUMNS:
        if col not in out.columns:
            out[col] = None
    if out.empty:
        return out.astype({"group_index": "Int64"})
    pairs = out[["sweep", "group"]].drop_duplicates()
    looked_up = [tags.of(str(s), str(g)) for s, g in pairs.itertuples(index=False)]
    known = pd.DataFrame(looked_up, columns=[f"_{c}" for c in TAG_COLUMNS], index=pairs.index)
    merged = out[["sweep", "group"]].merge(
        pd.concat([pairs, known], axis=1), how="left", on=["sweep", "group"]
    )
    merged.index = out.index
    for col in ("figure", "table"):
        out[col] = out[col].astype(object).where(out[col].notna(), merged[f"_{col}"])
    index = pd.to_numeric(out["group_index"], errors="coerce").astype("Int64")
    fallback = pd.to_numeric(merged["_group_index"], errors="coerce").astype("Int64")
    out["group_index"] = index.fillna(fallback)
    return out
