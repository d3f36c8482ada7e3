"""Scheduling functions p(t) of Randomized Sharpness-Aware Training (Zhao et al., Table 2); numpy.

Each step t of T a coin X_t ~ Bernoulli(p(t/T)) picks a sharpness-aware step (two passes) or a
plain one; Δη = (1/T)·Σ_t p(t/T) is the expected share of extra passes.

    >>> from rstsweep.schedules import parse
    >>> s = parse("piecewise(a=0, b=0.3)")     # also constant(0.5), linear(a=0.8, b=0.1), cos1...
    >>> s.spec, s.closed_form_extra
    ('piecewise(a=0, b=0.3)', 0.7)
    >>> int(s.draws(10, seed=0).sum())          # X_t = U_t < p(t/T); U from uniforms(T, seed)
    7

Specs are `name`, `name(x, ...)` or `name(a=x, b=y)`; out-of-range, missing, unknown or malformed
parameters raise `ScheduleError` (an `RstError` and a `ValueError`) with one line naming the
parameter and its range. Nothing is clipped. `Schedule.spec` is canonical (12 significant digits).

Adding a family: register it once at import time of your code, then use it in specs and YAML:

    >>> import numpy as np
    >>> from rstsweep.schedules import register_family
    >>> _ = register_family(
    ...     "power", lambda tau, k: tau**k, params=[("k", 0.0, 10.0)],
    ...     closed_form=lambda k: 1 / (k + 1), formula="τ^k", example={"k": 2.0})
    >>> parse("power(k=3)").closed_form_extra
    0.25

`p_fn(tau, **params)` must be vectorised over a float array and stay in [0, 1] for every valid
parameter (each new schedule is checked on a τ grid); `closed_form` may be omitted (numeric
integral); `constraint(**params)` may return an error text for cross-parameter limits.

Closed-loop policies (`aesam`, `budget(0.3)`) parse to a `Policy`: p_t decided during training
from the trainer's signal, the coin still X_t = U_t < p_t (see `policies.py`).
"""

from __future__ import annotations

from rstsweep.schedules.coins import SALT, uniforms
from rstsweep.schedules.errors import ScheduleError
from rstsweep.schedules.families import (
    Family,
    Param,
    Schedule,
    format_number,
    get_family,
    make,
    register_family,
    registered_families,
)
from rstsweep.schedules.groups import linear_group, piecewise_group
from rstsweep.schedules.policies import (
    SIGNAL_LAG,
    Policy,
    PolicyKind,
    PolicyParam,
    is_policy,
    register_policy,
    registered_policies,
)
from rstsweep.schedules.spec import parse

__all__ = [
    "SALT",
    "SIGNAL_LAG",
    "Family",
    "Param",
    "Policy",
    "PolicyKind",
    "PolicyParam",
    "Schedule",
    "ScheduleError",
    "format_number",
    "get_family",
    "is_policy",
    "linear_group",
    "make",
    "parse",
    "piecewise_group",
    "register_family",
    "register_policy",
    "registered_families",
    "registered_policies",
    "uniforms",
]
