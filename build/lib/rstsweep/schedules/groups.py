"""The paper's schedule groups: one-parameter slices of piecewise and linear used in its sweeps.

piecewise group 1: a=0, b=v  (plain steps first, then SAM)   Δη = 1 − v
piecewise group 2: a=1, b=v  (SAM first, then plain steps)   Δη = v
piecewise group 3: b=½, a=v  (a in the first half, 1−a after) Δη = ½
linear group 1: through (½, m) and (0, 0) if m ≤ ½, else through (½, m) and (1, 1)   Δη = m
linear group 2: through (½, ½) and (0, v)  (a = 1 − 2v, b = v)                      Δη = ½
"""

from __future__ import annotations

from rstsweep.schedules.errors import ScheduleError
from rstsweep.schedules.families import Schedule, format_number, make


def _check(kind: str, group: int, groups: tuple[int, ...], name: str, value: float) -> None:
    if group not in groups:
        raise ScheduleError(
            f"{kind} group: {group!r} is not one of {', '.join(map(str, groups))}",
            parameter="group",
            value=group,
        )
    if not 0.0 <= value <= 1.0:
        raise ScheduleError(
            f"{kind} group {group}: {name} = {format_number(value)} is not in [0, 1]",
            parameter=name,
            value=value,
            allowed=(0.0, 1.0),
        )


def piecewise_group(group: int, value: float) -> Schedule:
    """Group 1: piecewise(a=0, b=value); 2: (a=1, b=value); 3: piecewise(a=value, b=0.5)."""
    _check("piecewise", group, (1, 2, 3), "a" if group == 3 else "b", value)
    if group == 3:
        return make("piecewise", a=value, b=0.5)
    return make("piecewise", a=0.0 if group == 1 else 1.0, b=value)


def linear_group(group: int, value: float) -> Schedule:
    """Group 1: the line with Δη = value (m) through (½, m) and (0, 0) or (1, 1);
    group 2: the line through (½, ½) and (0, value), so Δη = ½."""
    _check("linear", group, (1, 2), "m" if group == 1 else "b", value)
    if group == 2:
        return make("linear", a=1.0 - 2.0 * value, b=value)
    if value <= 0.5:
        return make("linear", a=2.0 * value, b=0.0)
    slope = 2.0 * (1.0 - value)  # from (½, m) up to (1, 1)
    return make("linear", a=slope, b=1.0 - slope)
