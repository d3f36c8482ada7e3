"""CellConfig's fields as the command line sees them: `--set key=value` parsing (values read as YAML
scalars, keys checked against CellConfig) and the field listing of `rstsweep fields` (type, range
from the pydantic constraints, default, description). Derived from CellConfig alone, so a new field
needs no CLI change. No torch.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from rstsweep.core import registry
from rstsweep.core.algorithms import algorithm_names
from rstsweep.core.catalog import LARGE, SMALL, VARIANTS, dataset_names, model_names
from rstsweep.core.config import RUNTIME_FIELDS, CellConfig
from rstsweep.errors import RstError, format_validation_error, unknown_key, validation_detail

SEE_FIELDS = "`rstsweep fields` lists them"

Scalar = str | int | float | bool | None  # a YAML scalar, as `--set key=value` gives it


def parse_assignments(items: Iterable[str]) -> dict[str, Scalar]:
    """`["looksam_k=5", "nesterov=false"]` -> {"looksam_k": 5, "nesterov": False}.

    Values are YAML scalars (ints, floats, true/false, null; anything else stays a string);
    an unknown key, a missing `=` or a key given twice is a one-line RstError naming it.
    """
    out: dict[str, Scalar] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise RstError(f"--set {item!r}: expected KEY=VALUE ({SEE_FIELDS})")
        if key not in CellConfig.model_fields:
            message = unknown_key(key, CellConfig.model_fields, f"not a field; {SEE_FIELDS}")
            raise RstError(f"--set {key}: {message}", field=key)
        if key in out:
            raise RstError(f"--set {key}: given twice", field=key)
        out[key] = parse_scalar(text.strip())
    return out


def parse_scalar(text: str) -> Scalar:
    """A YAML scalar (`5`, `0.1`, `true`, `null`); a list, mapping or YAML error stays a string,
    so `schedule=piecewise(a=0, b=0.3)` or `device=cuda:1` pass through as written."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) or value is None else text


def make_config(values: Mapping[str, object], where: Mapping[str, str] | None = None) -> CellConfig:
    """A validated CellConfig from field values; a bad value is a one-line RstError naming the
    field (`where` maps a field to how the user gave it, e.g. `--set looksam_k`)."""
    try:
        return CellConfig(**values)
    except ValidationError as exc:
        loc = validation_detail(exc).loc
        field = str(loc[0]) if loc else None
        at = (where or {}).get(field) if field else None
        raise RstError(format_validation_error(exc, at=at), field=field) from None


# ----------------------------------------------------------------------------- the listing


@dataclass(frozen=True)
class FieldInfo:
    """One CellConfig field, described for people."""

    name: str
    type: str
    range: str
    default: str
    description: str
    runtime: bool  # outside the cell_id: changes where/how fast a cell runs, not its result


def describe_fields() -> list[FieldInfo]:
    """Every CellConfig field in declaration order."""
    return [
        FieldInfo(
            name,
            _type_text(info.annotation),
            _NAMED_RANGES.get(name, lambda: "")() or _range_text(info.annotation, info.metadata),
            _yaml_text(info.default),
            info.description or "",
            name in RUNTIME_FIELDS,
        )
        for name, info in CellConfig.model_fields.items()
    ]


def fields_text() -> str:
    """The `rstsweep fields` table: aligned plain-text columns, one field a line."""
    rows = [("field", "type", "range", "default", "description")]
    for f in describe_fields():
        note = " (runtime: not in cell_id)" if f.runtime else ""
        rows.append((f.name, f.type, f.range, f.default, f.description + note))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
             for row in rows]  # fmt: skip
    return "\n".join(line.rstrip() for line in lines)


def variants_text() -> str:
    """Which network each model builds for small images (Fashion-MNIST, CIFAR) and for ImageNet
    (`core.catalog.VARIANTS`), refused pairs included."""
    models = dict.fromkeys(m for m, _ in VARIANTS)
    lines = ["model layouts (what `model` builds for the data set):"]
    for model in models:
        for kind in (SMALL, LARGE):
            text = VARIANTS.get((model, kind), "refused: no ImageNet recipe is cited for it")
            lines.append(f"  {model:<10} {kind:<12} {text}")
    for name, entry in registry.MODELS.items():  # a user's models (plugins)
        for kind in (SMALL, LARGE):
            text = entry.description if kind in entry.input_kinds else "refused: not registered"
            lines.append(f"  {name:<10} {kind:<12} {text}")
    return "\n".join(lines)


# Fields whose allowed values come from a registry rather than a pydantic constraint.
_NAMED_RANGES = {
    "algorithm": lambda: "|".join(algorithm_names()),
    "schedule": lambda: "a spec: `rstsweep schedules`",
    "model": lambda: "|".join(model_names()),
    "dataset": lambda: "|".join(dataset_names()),
}


def _yaml_text(value: object) -> str:
    """A default as it would be written after `--set key=`: null, true, 0.05, cosine."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _choices(annotation: object) -> list[str] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return None


def _type_text(annotation: object) -> str:
    if _choices(annotation) is not None:
        return "str"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in typing.get_args(annotation)]
        return " | ".join("null" if p == "NoneType" else p for p in parts)
    return getattr(annotation, "__name__", str(annotation))


def _range_text(annotation: object, metadata: list[object]) -> str:
    """From the Field constraints: ge=0, lt=1 -> `[0, 1)`; gt=0 -> `> 0`; Literal -> `a|b|c`."""
    for arg in (annotation, *typing.get_args(annotation)):
        choices = _choices(arg)
        if choices is not None:
            return "|".join(choices)
    bounds = {}
    for item in metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(item, key, None) is not None:
                bounds[key] = getattr(item, key)
    low = ("[", bounds["ge"]) if "ge" in bounds else ("(", bounds["gt"]) if "gt" in bounds else None
    high = (
        ("]", bounds["le"]) if "le" in bounds else (")", bounds["lt"]) if "lt" in bounds else None
    )
    if low and high:
        return f"{low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    if high:
        return f"{'<=' if high[0] == ']' else '<'} {high[1]}"
    return ""
