"""The schedules' one error type: a bad spec or parameter, reported as one line."""

from __future__ import annotations

from typing import Any

from rstsweep.errors import RstError


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
        value: Any = None,
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
