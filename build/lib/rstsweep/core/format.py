"""The one home of how numbers are shown to people: durations, large counts and "mean ± std".
Plain Python (callers map these over pandas columns); every table, plan, status line and figure
label formats through these."""

from __future__ import annotations

import math

MISSING = "—"  # shown where there is no value


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_duration(seconds: float | None) -> str:
    """Seconds as the unit that reads best: '42 s', '3.5 min', '2.1 h', '4.0 d' ('-' for None)."""
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def format_clock(seconds: float) -> str:
    """Elapsed time as a clock reads it: '4:05', '1:02:03' (the live display's headline)."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_count(n: float) -> str:
    """A large count with an SI suffix: 1.23G, 4.50M, 12.00k, 999."""
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def format_mean_std(mean: float | None, std: float | None, digits: int = 2) -> str:
    """'m ± s'; 'm' alone when there is no spread (one seed); '—' when there is no value."""
    if _missing(mean):
        return MISSING
    text = f"{float(mean):.{digits}f}"
    return text if _missing(std) else f"{text} ± {float(std):.{digits}f}"


def format_time_mean_std(mean: float | None, std: float | None) -> str:
    """Mean ± std of a wall time in the unit that reads best for its mean: '17.8 ± 0.1 s',
    '3.5 ± 0.2 min', '2.1 h'; three decimals below one second (CI-sized runs take fractions of
    a second); '—' when there is no value. The tables' variant of `format_duration`."""
    if _missing(mean):
        return MISSING
    mean = float(mean)
    unit, div = ("s", 1) if mean < 120 else ("min", 60) if mean < 7200 else ("h", 3600)
    digits = 3 if mean < 1 else 1
    spread = "" if _missing(std) else f" ± {float(std) / div:.{digits}f}"
    return f"{mean / div:.{digits}f}{spread} {unit}"


def format_share(done: int, total: int, noun: str = "cells") -> str:
    """'k of n cells': how much of a whole is there (a partly finished sweep, a check that holds
    for some cases)."""
    return f"{int(done)} of {int(total)} {noun}"


def format_seeds(n_seeds: int, n_diverged: int = 0) -> str:
    """Seeds a mean is over, with the diverged ones left out of it: '3', '2 (+1 div.)'."""
    return f"{int(n_seeds)}" + (f" (+{int(n_diverged)} div.)" if n_diverged > 0 else "")
