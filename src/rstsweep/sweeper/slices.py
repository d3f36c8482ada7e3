"""Slices of a sweep: `--where KEY=VALUE` (repeatable) and `--seeds 0,1`, the one selection that
`run`, `plan` and `status` apply to a sweep's expanded cells.

A key is a cell field: a CellConfig field (`model`, `dataset`, `rho`, `schedule`, ...) or where the
cell sits in its sweep (`group`, `label`, `x`, `cell_id`, `figure`, `table`, `group_index`).
Values are read as YAML scalars, like `--set`'s, and also match as written (`label=a_c=0.1`). One
key given twice matches either value (`--where model=resnet18 --where model=wrn28-10`); different
keys must all match. Plain data: no torch, no ray.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rstsweep.core.config import CellConfig
from rstsweep.core.fields import parse_scalar
from rstsweep.errors import RstError, unknown_key

if TYPE_CHECKING:
    from rstsweep.sweeps import Cell

# Where a cell sits in its sweep (sweeper.cell.Cell's attributes besides its config).
PLACE_KEYS = ("sweep", "group", "label", "x", "cell_id", "figure", "table", "group_index")


@dataclass(frozen=True)
class Slice:
    """A selection of cells: every `where` key must match one of its values; `seeds`: these only."""

    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None

    def __bool__(self) -> bool:
        return bool(self.where) or self.seeds is not None

    def describe(self) -> str:
        """`model=resnet18, seeds 0,1`: the slice as the user gave it, for messages."""
        parts = [f"{k}={'|'.join(v)}" for k, v in self.where.items()]
        if self.seeds is not None:
            parts.append(f"seeds {','.join(map(str, self.seeds))}")
        return ", ".join(parts)


def cell_keys() -> list[str]:
    """Every key `--where` accepts."""
    return [*PLACE_KEYS, *CellConfig.model_fields]


def parse_slice(where: Iterable[str] | None = None, seeds: str | None = None) -> Slice:
    """`["model=resnet18", "group=piecewise-1"]`, `"0,1"` -> a Slice; a missing `=`, an unknown key
    or a bad seed list is a one-line RstError naming it."""
    chosen: dict[str, tuple[str, ...]] = {}
    keys = cell_keys()
    for item in where or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise RstError(f"--where {item!r}: expected KEY=VALUE (a cell field)")
        if key not in keys:
            message = unknown_key(key, keys, "not a cell field; `rstsweep fields` lists them")
            raise RstError(f"--where {key}: {message}", field=key)
        chosen[key] = (*chosen.get(key, ()), text.strip())
    return Slice(chosen, _parse_seeds(seeds))


def _parse_seeds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise RstError(
            f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1"
        ) from None
    if not seeds or min(seeds) < 0:
        raise RstError(f"--seeds {text!r}: expected non-negative integers, e.g. 0,1")
    return seeds


def cell_value(cell: Cell, key: str) -> object:
    """A cell's value of a `--where` key (its place in the sweep, else its config field)."""
    return getattr(cell, key) if key in PLACE_KEYS else getattr(cell.config, key)


def _matches(actual: object, text: str) -> bool:
    wanted = parse_scalar(text)
    if isinstance(actual, float) and isinstance(wanted, (int, float)):
        return not isinstance(wanted, bool) and abs(actual - wanted) <= 1e-12 * max(1, abs(actual))
    return actual == wanted or str(actual) == text


def select(cells: Sequence[Cell], chosen: Slice) -> list[Cell]:
    """The cells of `chosen`, in their order. A slice that selects nothing is a one-line RstError
    saying which values the key has (a typo must not look like a finished sweep)."""
    if not chosen:
        return list(cells)
    out = list(cells)
    for key, texts in chosen.where.items():
        kept = [c for c in out if any(_matches(cell_value(c, key), t) for t in texts)]
        if not kept:
            have = sorted({str(cell_value(c, key)) for c in out})
            shown = ", ".join(have[:8]) + (", ..." if len(have) > 8 else "")
            raise RstError(f"--where {key}={'|'.join(texts)}: no cell has it ({key}: {shown})")
        out = kept
    if chosen.seeds is not None:
        seeds = set(chosen.seeds)
        kept = [c for c in out if c.config.seed in seeds]
        if not kept:
            have = ",".join(map(str, sorted({c.config.seed for c in out})))
            raise RstError(
                f"--seeds {','.join(map(str, chosen.seeds))}: no cell has them (seeds {have})"
            )
        out = kept
    return out
