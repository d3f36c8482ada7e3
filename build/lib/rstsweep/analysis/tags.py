"""What each sweep feeds: the `figure:` / `table:` tags of sweeps.yaml and the Fig. 2 group number.

The store records them with the cells (`cells.figure`, `cells.table`, `cells.group_index`), and
figures and tables select their sweeps by these columns, so a new sweep tagged `figure: "Fig. 1"`
is drawn with no code change. Stores written before these columns existed (and trials rows whose
cell was never recorded) read them as nulls: `fill_missing_tags` fills such rows from the tags of
the sweeps.yaml shipped with rstsweep (package data `rstsweep/data/sweeps.yaml`), matched by
sweep and group name; rows that carry tags keep their own. Reads YAML only: no sweeper import
(analysis may not depend on it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from rstsweep.core.shipped import packaged_sweeps_file

TAG_COLUMNS = ("figure", "table", "group_index")
# The sweeps.yaml schedule helpers that name a Fig. 2 group: {piecewise_group: N, value: ...}.
_GROUP_HELPERS = ("piecewise_group", "linear_group")


@dataclass(frozen=True)
class SweepTags:
    """Tags of one sweeps file: sweep -> figure/table, group name -> Fig. 2 group number."""

    figure: dict[str, str] = field(default_factory=dict)
    table: dict[str, str] = field(default_factory=dict)
    group_index: dict[str, int] = field(default_factory=dict)

    def of(self, sweep: str, group: str) -> tuple[str | None, str | None, int | None]:
        """(figure, table, group_index) of a cell of `sweep` in `group`."""
        return self.figure.get(sweep), self.table.get(sweep), self.group_index.get(group)


def sweep_tags(sweeps: Mapping[str, Any]) -> SweepTags:
    """The tags of a sweeps file's `sweeps:` section (raw YAML mapping or pydantic dump). A group
    keeps its name when another sweep includes it, so its number is looked up by name; a name
    defined twice with different numbers has none."""
    tags = SweepTags()
    clash: set[str] = set()
    for name, body in (sweeps or {}).items():
        body = body or {}
        for key in ("figure", "table"):
            if body.get(key):
                getattr(tags, key)[str(name)] = str(body[key])
        for gname, group in (body.get("groups") or {}).items():
            index = _group_number((group or {}).get("schedule"))
            if index is None:
                continue
            if tags.group_index.get(gname, index) != index:
                clash.add(gname)
            tags.group_index[gname] = index
    for gname in clash:
        del tags.group_index[gname]
    return tags


def _group_number(schedule: Any) -> int | None:
    if isinstance(schedule, Mapping):
        for helper in _GROUP_HELPERS:
            if helper in schedule:
                return int(schedule[helper])
    return None


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
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return SweepTags()
    return sweep_tags(data.get("sweeps") or {})


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
