"""User-facing errors: one exception type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class RstError(Exception):
    """A user-input error (a spec, a file, an option): shown as one line, no traceback."""

    exit_code = 2


def format_validation_error(exc: Exception, prefix: str = "") -> str:
    """One line from a pydantic ValidationError: `<prefix>.<loc>: <message>` for its first error."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"{prefix}: {exc}" if prefix else str(exc)
    first = errors()[0]
    loc = ".".join(str(part) for part in first.get("loc", ()))
    path = ".".join(part for part in (prefix, loc) if part)
    message = first.get("msg", str(exc)).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    more = len(errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{path}: {message}{suffix}" if path else f"{message}{suffix}"
