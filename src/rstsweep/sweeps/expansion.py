"""Expansion of a sweep of sweeps.yaml into cells: models x datasets x seeds x groups x grid
points, each a fully resolved CellConfig with its cell_id.

Config precedence (later wins): CellConfig defaults < profile.config < profile.per_model <
profile.per_dataset < sweep.config < sweep.per_model < group fields < profile.overrides <
command-line overrides (`--set`); then model, dataset and seed. Every field remembers the YAML path
that set it, so a bad value is reported where it was written, down to the grid value a template
used. No torch, no ray.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from rstsweep.core.config import CellConfig
from rstsweep.errors import (
    PathPart,
    RstError,
    format_validation_error,
    validation_detail,
    yaml_path,
)
from rstsweep.schedules import ScheduleError, linear_group, parse, piecewise_group
from rstsweep.sweeps.cell import Cell
from rstsweep.sweeps.templates import fill, format_value, refs, template_of
from rstsweep.sweeps.yaml_schema import (
    LOOP_FIELDS,
    GroupRef,
    GroupSpec,
    ProfileSpec,
    SweepsFile,
    SweepSpec,
    as_sweeps_file,
    resolve_groups,
)

# A grid point: axis -> (index in the YAML list, value)
_Point = dict[str, tuple[int, object]]
# A resolved field: (value, YAML path that set it, template it came from or None)
_Layer = dict[str, tuple[object, tuple[PathPart, ...], str | None]]
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Sweep:
    """What every cell of one expansion shares besides its group and grid point."""

    name: str
    body: SweepSpec
    last: _Layer  # the layers applied over the group's fields: profile.overrides, then `--set`


def expand(
    path_or_file: str | Path | SweepsFile,
    sweep: str,
    profile: str,
    overrides: Mapping[str, object] | None = None,
) -> list[Cell]:
    """All cells of `sweep` under `profile`, deduplicated by cell_id (first occurrence wins).

    `overrides` (CellConfig field -> value, `--set` on the command line) apply last, so they change
    the cell_ids. Raises RstError (one line, YAML path) for an unknown sweep/profile or any invalid
    value.
    """
    spec = as_sweeps_file(path_or_file)
    body = _pick("sweep", sweep, spec.sweeps)
    prof = _pick("profile", profile, spec.profiles)
    groups = resolve_groups(spec, sweep)
    models = prof.models or body.models or spec.defaults.models
    datasets = prof.datasets or body.datasets or spec.defaults.datasets
    seeds = prof.seeds[: body.max_seeds] if body.max_seeds else prof.seeds
    context = _Sweep(sweep, body, _last_layers(prof, profile, overrides or {}))
    points = {g.where: list(_grid_points(g)) for g in groups}
    cells: dict[str, Cell] = {}
    for seed, model, dataset in itertools.product(seeds, models, datasets):
        base = _base_layers(prof, body, profile, sweep, model, dataset)
        for group in groups:
            for point in points[group.where]:
                cell = _make_cell(context, group, point, base, model, dataset, seed)
                cells.setdefault(cell.cell_id, cell)
    return list(cells.values())


def expand_all(
    path_or_file: str | Path | SweepsFile,
    profile: str,
    overrides: Mapping[str, object] | None = None,
) -> dict[str, list[Cell]]:
    """Every sweep of the file expanded under `profile` (validates the whole file)."""
    spec = as_sweeps_file(path_or_file)
    return {name: expand(spec, name, profile, overrides) for name in spec.sweeps}


def _pick(kind: str, name: str, known: Mapping[str, _T]) -> _T:
    if name not in known:
        raise RstError(f"unknown {kind} {name!r} (known: {', '.join(known)})")
    return known[name]


def _grid_points(group: GroupRef) -> Iterator[_Point]:
    axes = list(group.spec.grid.items())
    ranges = [list(enumerate(values)) for _, values in axes]
    for combo in itertools.product(*ranges):
        yield {name: iv for (name, _), iv in zip(axes, combo, strict=True)}


def _base_layers(
    prof: ProfileSpec, body: SweepSpec, profile: str, sweep: str, model: str, dataset: str
) -> _Layer:
    out: _Layer = {}
    sections = [
        (prof.config, ("profiles", profile, "config")),
        (prof.per_model.get(model, {}), ("profiles", profile, "per_model", model)),
        (prof.per_dataset.get(dataset, {}), ("profiles", profile, "per_dataset", dataset)),
        (body.config, ("sweeps", sweep, "config")),
        (body.per_model.get(model, {}), ("sweeps", sweep, "per_model", model)),
    ]
    for section, where in sections:
        out.update({k: (v, (*where, k), None) for k, v in section.items()})
    return out


def _last_layers(prof: ProfileSpec, profile: str, overrides: Mapping[str, object]) -> _Layer:
    out: _Layer = {
        k: (v, ("profiles", profile, "overrides", k), None) for k, v in prof.overrides.items()
    }
    for key, value in overrides.items():
        if key in LOOP_FIELDS:
            raise RstError(
                f"--set {key}: set by the cell loop; choose {key}s with the profile", field=key
            )
        out[key] = (value, (f"--set {key}",), None)
    return out


def _make_cell(
    context: _Sweep,
    group: GroupRef,
    point: _Point,
    base: _Layer,
    model: str,
    dataset: str,
    seed: int,
) -> Cell:
    values = {name: value for name, (_, value) in point.items()}
    layers = dict(base)
    g = group.spec
    for key, value in g.overrides.items():
        filled = fill(value, values, (*group.where, key))
        layers[key] = (filled, (*group.where, key), template_of(value))
    if g.schedule is not None:
        sched, where = _schedule(g.schedule, values, group, point)
        layers["schedule"] = (sched, where, template_of(g.schedule))
    layers.update(context.last)
    fields = {k: v for k, (v, _, _) in layers.items()}
    if g.rho_scale != 1.0:
        rho = fields.get("rho", CellConfig.model_fields["rho"].default)
        fields["rho"] = float(rho) * g.rho_scale
    try:
        config = CellConfig(**fields, model=model, dataset=dataset, seed=seed)
    except ValidationError as exc:
        raise RstError(_cell_error(exc, layers, group, point)) from None
    x = fill(g.x, values, (*group.where, "x")) if g.x is not None else None
    if x is not None and not isinstance(x, (int, float)):
        raise RstError(f"{yaml_path(*group.where, 'x')}: {x!r} is not a number")
    return Cell(
        context.name,
        group.name,
        _label(g, values, group),
        None if x is None else float(x),
        config,
        config.cell_id(),
        figure=context.body.figure,
        table=context.body.table,
        group_index=int(g.helper[1]) if g.helper else None,
    )


def _label(g: GroupSpec, values: dict[str, object], group: GroupRef) -> str:
    if g.label is not None:
        return str(fill(g.label, values, (*group.where, "label"), numeric=False))
    if not values:
        return group.name
    return ",".join(f"{k}={format_value(v)}" for k, v in values.items())


def _schedule(
    sched: str | dict[str, object], values: dict[str, object], group: GroupRef, point: _Point
) -> tuple[str, tuple[PathPart, ...]]:
    """The schedule spec string of a cell (helpers called), and the YAML path it came from."""
    if isinstance(sched, str):
        where = (*group.where, "schedule")
        text = fill(sched, values, where, numeric=False)
        try:
            return parse(text).spec, where
        except ScheduleError as exc:
            raise RstError(_grid_error(exc, where, sched, group, point)) from None
    kind, number = group.spec.helper or ("", 0)
    where = (*group.where, "schedule", "value")
    value = fill(sched["value"], values, where)
    helper = piecewise_group if kind == "piecewise_group" else linear_group
    try:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ScheduleError(f"{value!r} is not a number", parameter="value", value=value)
        return helper(number, float(value)).spec, where
    except ScheduleError as exc:
        raise RstError(_grid_error(exc, where, template_of(sched), group, point)) from None


def _grid_error(
    exc: Exception,
    where: tuple[PathPart, ...],
    template: str | None,
    group: GroupRef,
    point: _Point,
) -> str:
    """Point the message at the grid value responsible when the field's template uses one axis:
    `sweeps.constant.groups.constant.grid.a_c[3]: 1.2 is not in [0, 1]`."""
    message = validation_detail(exc).message
    used = list(dict.fromkeys(refs(template))) if template else []
    if len(used) != 1 or used[0] not in point:
        suffix = f" (grid point {_point_text(point)})" if point else ""
        return f"{yaml_path(*where)}: {message}{suffix}"
    axis = used[0]
    index, value = point[axis]
    text = f"{format_value(value)}: {message}"
    # A schedule parameter out of range that *is* the grid value: say so without the parameter.
    if isinstance(exc, ScheduleError) and exc.out_of_range and _same_number(exc.value, value):
        text = f"{format_value(value)} is not in {exc.range_text}"
    return f"{yaml_path(*group.where, 'grid', axis, index)}: {text}"


def _same_number(a: object, b: object) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _point_text(point: _Point) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, (_, v) in point.items())


def _cell_error(exc: ValidationError, layers: _Layer, group: GroupRef, point: _Point) -> str:
    """A CellConfig error, reported where the offending field was written."""
    loc = validation_detail(exc).loc
    field = str(loc[0]) if loc else None
    if field not in layers:
        return format_validation_error(exc, prefix=yaml_path(*group.where))
    _, where, template = layers[field]
    if template is not None:
        return _grid_error(exc, where, template, group, point)
    return format_validation_error(exc, at=yaml_path(*where))
