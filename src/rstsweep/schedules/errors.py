"""The schedules' one error type: a bad spec or parameter, reported as one line."""

from __future__ import annotations

from rstsweep.errors import RstError


class ScheduleError(RstError, ValueError):
    """A schedule spec that does not parse or whose parameters are out of range.

    A `ValueError` too, so pydantic validators that call `parse` turn it into a ValidationError.
    """
