"""Spec strings → `Schedule`: a small tokenizer (never eval) for `name`, `name(x)`, `name(a=x)`."""

from __future__ import annotations

import re

from rstsweep.schedules.errors import ScheduleError
from rstsweep.schedules.families import Schedule, get_family
from rstsweep.schedules.policies import _POLICIES, Policy

_SPEC_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*\Z", re.DOTALL)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_ARG_RE = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?(\S.*?)\s*\Z", re.DOTALL)
EXAMPLES = "e.g. constant(0.5), piecewise(a=0, b=0.3), linear(a=0.8, b=0.1), cos1, budget(0.3)"


def parse(spec: str) -> Schedule | Policy:
    """Parse a spec such as `constant(0.5)`, `piecewise(a=0, b=0.3)`, `cos1`, or a closed-loop
    policy such as `aesam` or `budget(0.3)` (a `Policy`, see `policies.py`).

    Raises `ScheduleError` (one line naming the parameter and its allowed range) on any problem.
    """
    if isinstance(spec, (Schedule, Policy)):
        return spec
    if not isinstance(spec, str):
        raise ScheduleError(f"schedule: expected a spec string, got {type(spec).__name__}")
    match = _SPEC_RE.match(spec)
    if match is None:
        raise ScheduleError(f"schedule {spec.strip()!r} is malformed ({EXAMPLES})")
    name, args = match.group(1).lower(), match.group(2)
    policy = _POLICIES.get(name)
    names = [p.name for p in (policy.params if policy else get_family(name).params)]
    params: dict[str, float] = {}
    seen_keyword = False
    for position, arg in enumerate(_split_args(spec, args)):
        key, value = _parse_arg(spec, arg)
        seen_keyword = seen_keyword or key is not None
        if key is None:
            if seen_keyword:
                raise ScheduleError(f"schedule {spec!r}: positional argument after keyword")
            if position >= len(names):
                raise ScheduleError(
                    f"schedule {spec!r}: {name} takes {len(names)} parameter(s)"
                    f" ({', '.join(names) or 'none'})"
                )
            key = names[position]
        if key in params:
            raise ScheduleError(f"schedule {spec!r}: parameter {key} given twice", parameter=key)
        params[key] = value
    return Policy(name, params) if policy else Schedule(name, params)


def _split_args(spec: str, args: str | None) -> list[str]:
    if args is None or not args.strip():
        return []
    parts = args.split(",")
    if any(not part.strip() for part in parts):
        raise ScheduleError(f"schedule {spec!r}: empty argument")
    return parts


def _parse_arg(spec: str, arg: str) -> tuple[str | None, float]:
    match = _ARG_RE.match(arg)
    if match is None or not _NUMBER_RE.match(match.group(2)):
        raise ScheduleError(
            f"schedule {spec!r}: cannot read argument {arg.strip()!r} (want number or name=number)"
        )
    key = match.group(1).lower() if match.group(1) else None
    return key, float(match.group(2))
