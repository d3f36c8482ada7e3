"""User-facing errors: one exception type the CLI turns into a one-line message and exit code 2
(`RstError`; `ScheduleError` is its kind for schedule specs), and the one formatter of pydantic
validation errors (used by the CLI, `--set` and sweeps.yaml).

No pydantic import here: a ValidationError is read through its `errors()` interface, models
through their `model_fields`, so `rstsweep --help` stays fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

PathPart = str | int  # a key, or a list index, of a location in a YAML file or a model


class RstError(Exception):
    """A user-input error (a spec, a file, an option): shown as one line, no traceback.

    `field`, `value` and `allowed` (a closed range `(lo, hi)`) say what was wrong where known, so
    callers can re-point the message (at a grid value of sweeps.yaml, say) without re-parsing it.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        allowed: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.allowed = allowed


class ScheduleError(RstError, ValueError):
    """A schedule spec that does not parse or whose parameters are out of range.

    `parameter`, `value` and `allowed` (the closed range `(lo, hi)`) name the offending parameter
    when there is one, so callers (sweeps.yaml expansion) can point at the grid value that produced
    it. A `ValueError` too, so pydantic validators that call `parse` turn it into a ValidationError.
    """

    def __init__(
        self,
        message: str,
        *,
        parameter: str | None = None,
        value: object = None,
        allowed: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(message, field=parameter, value=value, allowed=allowed)

    @property
    def parameter(self) -> str | None:
        return self.field

    @property
    def range_text(self) -> str | None:
        """The allowed range as text, `[0, 1]` (None when the error has no range)."""
        if self.allowed is None:
            return None
        lo, hi = (format(float(v), ".12g") for v in self.allowed)
        return f"[{lo}, {hi}]"

    @property
    def out_of_range(self) -> bool:
        """The error is a value outside `allowed` (not a name, a type or a cross-parameter rule)."""
        return self.allowed is not None and self.value is not None


def yaml_path(*parts: PathPart) -> str:
    """A location as text: `a.b[3].c` (ints are list indices)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def unknown_key(key: str, known: Iterable[str], tail: str = "") -> str:
    """'unknown key (did you mean 'x'? <tail>)': the closest known key as a hint."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}{tail})" if hint or tail else "unknown key"


@dataclass(frozen=True)
class ValidationDetail:
    """The first error of a pydantic ValidationError, as data."""

    loc: tuple[PathPart, ...]
    kind: str  # pydantic's error type: "extra_forbidden", "missing", "greater_than", ...
    message: str  # pydantic's text, without its "Value error, " prefix
    value: object  # the offending input
    count: int  # how many errors the exception holds


def validation_detail(exc: Exception) -> ValidationDetail:
    """The first error of `exc` (a pydantic ValidationError; anything else gives its text)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return ValidationDetail((), "", str(exc), None, 1)
    all_errors = errors()
    first = all_errors[0]
    message = first.get("msg", str(exc)).removeprefix("Value error, ")
    return ValidationDetail(
        tuple(first.get("loc", ())), first.get("type", ""), message, first.get("input"),
        len(all_errors),
    )  # fmt: skip


def format_validation_error(
    exc: Exception, prefix: str = "", model: type[BaseModel] | None = None, at: str | None = None
) -> str:
    """One line from a pydantic ValidationError: `<prefix>.<loc>: <value>: <message>`.

    `at` replaces `<prefix>.<loc>` (where the value was written, e.g. a YAML path or a `--set`);
    an unknown key lists the known ones when `model` (the validated pydantic class) is given;
    further errors are counted, not shown.
    """
    d = validation_detail(exc)
    message = d.message
    if d.kind == "extra_forbidden":
        parent = _model_at(model, d.loc[:-1]) if model is not None else None
        known = list(parent.model_fields) if parent is not None else []
        message = unknown_key(str(d.loc[-1]), known, f"known: {', '.join(known)}" if known else "")
    elif d.kind == "missing":
        message = "required key is missing"
    elif _is_scalar(d.value) and not (isinstance(d.value, str) and repr(d.value) in message):
        message = f"{d.value!r}: {message}"
    more = d.count - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    path = at if at is not None else yaml_path(*(p for p in (prefix,) if p), *d.loc)
    return f"{path}: {message}" if path else message


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _is_model(obj: object) -> bool:
    return isinstance(obj, type) and isinstance(getattr(obj, "model_fields", None), dict)


def _model_at(model: type[BaseModel], loc: tuple[PathPart, ...]) -> type[BaseModel] | None:
    """The pydantic model class found by walking `loc` from `model` (for 'known keys' hints)."""
    current: object = model
    for part in loc:
        if _is_model(current):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:  # a dict[str, Model] / list / Optional: look for a model among the type arguments
            current = next((a for a in getattr(current, "__args__", ()) if _is_model(a)), None)
            if current is None:
                return None
    return current if _is_model(current) else None
