"""The `Schedule` type, the family registry and the paper's seven families (Zhao et al., Table 2).

A family is a named p(τ; params) with parameter ranges, an optional cross-parameter constraint,
the closed-form Δη = ∫₀¹ p(τ) dτ and display formulas. A `Schedule` is one validated instance;
constructing it (directly, via `make` or via `parse`) checks every parameter and never clips.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rstsweep.errors import ScheduleError
from rstsweep.schedules.coins import uniforms

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

NAME_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
# p(τ) may miss [0, 1] by float rounding only (e.g. linear with a + b = 1); beyond this it is a bug.
P_TOLERANCE = 1e-9
# τ grid on which every new schedule's p is checked to lie in [0, 1] (catches bad user families).
_CHECK_TAU = np.append(np.arange(1024) / 1024, 1.0 - 1e-12)


def format_number(x: float) -> str:
    """Shortest stable text for a parameter: up to 12 significant digits, no `-0`."""
    text = format(float(x), ".12g")
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class Param:
    """One parameter of a family and its closed allowed range [lo, hi]."""

    name: str
    lo: float
    hi: float

    @property
    def range_text(self) -> str:
        return f"[{format_number(self.lo)}, {format_number(self.hi)}]"


@dataclass(frozen=True)
class Family:
    """A registered scheduling function family; see `register_family`."""

    name: str
    p_fn: Callable[..., ArrayLike]  # p_fn(tau_array, **params) -> p in [0, 1]
    params: tuple[Param, ...]
    closed_form: Callable[..., float]
    formula: str
    closed_form_formula: str = ""
    constraint: Callable[..., str | None] | None = None
    example: Mapping[str, float] = field(default_factory=dict)


_REGISTRY: dict[str, Family] = {}


def registered_families() -> list[Family]:
    """All registered families, built-ins first, in registration order."""
    return list(_REGISTRY.values())


def is_family(name: str) -> bool:
    return name in _REGISTRY


def get_family(name: str) -> Family:
    """The registered family `name` (`spec.parse` names the policies too when a name is unknown)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ScheduleError(f"unknown schedule family {name!r} (known: {known})") from None


class Curve:
    """What a schedule and a policy share: p(τ) on the grid of a run's T steps and its mean, Δη.
    Subclasses define `p(tau)` (vectorised over τ ∈ [0, 1))."""

    def p(self, tau: ArrayLike) -> np.ndarray | np.floating:
        raise NotImplementedError

    def probabilities(self, T: int) -> np.ndarray:
        """p(t/T) for t = 0..T-1."""
        return np.asarray(self.p(np.arange(T) / T), dtype=float).reshape(T)

    def expected_extra(self, T: int) -> float:
        """Discrete Δη over T steps: (1/T)·Σ_t p(t/T), the expected share of two-pass steps."""
        if T < 1:
            raise ScheduleError(f"T: {T} must be >= 1")
        return float(self.probabilities(T).mean())


@dataclass(frozen=True)
class Schedule(Curve):
    """A validated p(t). Equal schedules have equal `.spec` (parameters rounded to 12 digits)."""

    family: str
    params: dict[str, float] = field(default_factory=dict)
    is_policy = False  # open loop: p(t) fixed before training (see policies.Policy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _validated(get_family(self.family), self.params))
        raw = self._raw_p(_CHECK_TAU)
        bad = np.flatnonzero(~((raw >= -P_TOLERANCE) & (raw <= 1 + P_TOLERANCE)))
        if bad.size:
            i = bad[0]
            raise ScheduleError(
                f"{self.spec}: p(τ) = {raw[i]:.6g} at τ = {_CHECK_TAU[i]:.6g} is outside [0, 1]"
            )

    def __hash__(self) -> int:
        return hash(self.spec)

    def __str__(self) -> str:
        return self.spec

    @property
    def _fam(self) -> Family:
        return get_family(self.family)

    @property
    def spec(self) -> str:
        """Canonical spec: `cos1`, `constant(0.5)`, `piecewise(a=0, b=0.3)`."""
        values = [format_number(self.params[p.name]) for p in self._fam.params]
        if not values:
            return self.family
        if len(values) == 1:
            return f"{self.family}({values[0]})"
        names = (p.name for p in self._fam.params)
        return f"{self.family}({', '.join(f'{n}={v}' for n, v in zip(names, values, strict=True))})"

    @property
    def formula(self) -> str:
        """p(τ) as text, e.g. `a·τ + b`."""
        return self._fam.formula

    @property
    def closed_form_formula(self) -> str:
        """Δη as text, e.g. `a/2 + b` (empty if the family gave none)."""
        return self._fam.closed_form_formula

    @property
    def param_a(self) -> float | None:
        return self._nth_param(0)

    @property
    def param_b(self) -> float | None:
        return self._nth_param(1)

    def _nth_param(self, i: int) -> float | None:
        names = [p.name for p in self._fam.params]
        return self.params[names[i]] if i < len(names) else None

    def _raw_p(self, tau: np.ndarray) -> np.ndarray:
        out = np.asarray(self._fam.p_fn(tau, **self.params), dtype=float)
        return np.broadcast_to(out, tau.shape)

    def p(self, tau: ArrayLike) -> np.ndarray | np.floating:
        """p(τ) for τ ∈ [0, 1), vectorised; a scalar in gives a numpy scalar out."""
        tau_arr = np.asarray(tau, dtype=float)
        # Clip only float rounding noise: __post_init__ has rejected genuinely out-of-range p.
        out = np.clip(self._raw_p(tau_arr), 0.0, 1.0)
        return out[()] if out.ndim == 0 else out

    @property
    def closed_form_extra(self) -> float:
        """Continuous Δη = ∫₀¹ p(τ) dτ (the paper's Table 2)."""
        return float(self._fam.closed_form(**self.params))

    def draws(self, T: int, seed: int) -> np.ndarray:
        """Coins X_0..X_{T-1} = U_t < p(t/T); U = `uniforms(T, seed)`, shared by all schedules."""
        return uniforms(T, seed) < self.probabilities(T)


def make(family: str, /, **params: float) -> Schedule:
    """Build a validated schedule from a family name and keyword parameters."""
    return Schedule(family, params)


def _validated(fam: Family, params: Mapping[str, object]) -> dict[str, float]:
    """Check names, types, ranges, completeness and constraint; round to 12 significant digits."""
    names = [p.name for p in fam.params]
    for key in params:
        if key not in names:
            allowed = ", ".join(names) if names else "none"
            raise ScheduleError(
                f"{fam.name}: unknown parameter {key!r} (parameters: {allowed})", parameter=key
            )
    out: dict[str, float] = {}
    for p in fam.params:
        if p.name not in params:
            raise ScheduleError(
                f"{fam.name}: missing parameter {p.name} (in {p.range_text})", parameter=p.name
            )
        value = _as_float(fam, p, params[p.name])
        if not p.lo <= value <= p.hi:
            raise ScheduleError(
                f"{fam.name}: parameter {p.name} = {format_number(value)} is not in {p.range_text}",
                parameter=p.name,
                value=value,
                allowed=(p.lo, p.hi),
            )
        out[p.name] = float(format_number(value))
    problem = fam.constraint(**out) if fam.constraint else None
    if problem:
        raise ScheduleError(f"{fam.name}: {problem}")
    return out


def _as_float(fam: Family, p: Param, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ScheduleError(
            f"{fam.name}: parameter {p.name} = {value!r} is not a number",
            parameter=p.name,
            value=value,
        )
    return float(value)


def register_family(
    name: str,
    p_fn: Callable[..., ArrayLike],
    params: Sequence[tuple[str, float, float] | Param] = (),
    closed_form: Callable[..., float] | None = None,
    formula: str = "",
    *,
    closed_form_formula: str = "",
    constraint: Callable[..., str | None] | None = None,
    example: Mapping[str, float] | None = None,
    replace: bool = False,
) -> Family:
    """Register a family so `parse("name(...)")` knows it; see the package docstring.

    `p_fn(tau, **params)` maps a float array τ ∈ [0, 1) to p ∈ [0, 1]; `params` are
    `(name, lo, hi)` ranges; `closed_form(**params)` gives ∫₀¹ p (None: a fine midpoint rule);
    `constraint(**params)` returns an error text or None; `example` is the Table 2 instance
    (default: each range's midpoint).
    """
    if not NAME_RE.match(name):
        raise ScheduleError(f"family name {name!r} must match [a-z_][a-z0-9_]*")
    if name in _REGISTRY and not replace:
        raise ScheduleError(f"schedule family {name!r} is already registered")
    plist = tuple(p if isinstance(p, Param) else Param(*p) for p in params)
    for p in plist:
        if not NAME_RE.match(p.name) or not p.lo <= p.hi:
            raise ScheduleError(f"{name}: bad parameter {p!r}")
    if closed_form is None:
        closed_form = _midpoint_integral(p_fn)
    if example is None:
        example = {p.name: (p.lo + p.hi) / 2 for p in plist}
    fam = Family(name, p_fn, plist, closed_form, formula or name, closed_form_formula,
                 constraint, dict(example))  # fmt: skip
    previous = _REGISTRY.get(name)
    _REGISTRY[name] = fam
    try:
        Schedule(name, dict(example))  # the example must itself be valid
    except ScheduleError:
        if previous is None:
            del _REGISTRY[name]
        else:
            _REGISTRY[name] = previous
        raise
    return fam


def _midpoint_integral(p_fn: Callable[..., ArrayLike], n: int = 100_000) -> Callable[..., float]:
    tau = (np.arange(n) + 0.5) / n
    return lambda **params: float(np.mean(np.broadcast_to(p_fn(tau, **params), tau.shape)))


def _linear_stays_in_unit_interval(a: float, b: float) -> str | None:
    # p(0) = b is range-checked; p(1) = a + b must be too (1e-12: params carry 12 digits).
    if -1e-12 <= a + b <= 1 + 1e-12:
        return None
    return f"a + b = {format_number(a + b)} is not in [0, 1] (p(τ) = a·τ + b must stay in [0, 1])"


def _register_builtins() -> None:
    unit = (0.0, 1.0)
    register_family(
        "constant", lambda tau, a: np.full_like(tau, a), [("a", *unit)], lambda a: a,
        "a", closed_form_formula="a", example={"a": 0.5},
    )  # fmt: skip
    register_family(
        "piecewise", lambda tau, a, b: np.where(tau < b, a, 1.0 - a),
        [("a", *unit), ("b", *unit)], lambda a, b: a * b + (1 - a) * (1 - b),
        "a if τ < b else 1 − a", closed_form_formula="a·b + (1−a)(1−b)",
        example={"a": 0.0, "b": 0.5},
    )  # fmt: skip
    register_family(
        "linear", lambda tau, a, b: a * tau + b, [("a", -1.0, 1.0), ("b", *unit)],
        lambda a, b: a / 2 + b, "a·τ + b", closed_form_formula="a/2 + b",
        constraint=_linear_stays_in_unit_interval, example={"a": 1.0, "b": 0.0},
    )  # fmt: skip
    trig: list[tuple[str, Callable[[np.ndarray], np.ndarray], float, str, str]] = [
        ("cos1", lambda t: 0.5 + 0.5 * np.cos(np.pi * t), 0.5, "½ + ½·cos(πτ)", "½"),
        ("cos2", lambda t: 0.5 - 0.5 * np.cos(np.pi * t), 0.5, "½ − ½·cos(πτ)", "½"),
        ("sin1", lambda t: np.sin(np.pi * t), 2 / math.pi, "sin(πτ)", "2/π"),
        ("sin2", lambda t: 1.0 - np.sin(np.pi * t), 1 - 2 / math.pi, "1 − sin(πτ)", "1 − 2/π"),
    ]
    for name, fn, integral, formula, cf_text in trig:
        register_family(name, fn, (), lambda v=integral: v, formula, closed_form_formula=cf_text)


_register_builtins()
