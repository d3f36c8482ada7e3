"""Closed-loop step policies: p_t decided from the trainer's signals instead of fixed in advance.

A schedule fixes p(t/T) before training; a policy is a small state machine that, before step t,
turns the signals of the steps already taken (the first-pass squared gradient norm ‖g‖², the loss)
and the coins already drawn into p_t. The coin is still X_t = U_t < p_t with U from the seeded
stream (`coins.uniforms`), so two policies (or a policy and a schedule) of the same seed share
every U_t: common random numbers survive.

Signal lag. X_t is decided from the signal of step t − lag (steps t < lag see none). The default,
SIGNAL_LAG = 2, costs no host-device sync: with a lag of 1 the host would have to wait, before
launching step t, for step t − 1 to finish on the GPU (the queue drains every step); with 2 one
step is always in flight, and reading the older value costs no stall. Lag 0 (`signal_lag: 0` in the
cell) is the published rule: X_t from step t's own first-pass gradient, one scalar read per step.
The lag is recorded with the cell, so the draws are a pure function of (recorded signals, seed,
lag): `Policy.replay` recomputes them from the draws table.

    >>> from rstsweep.schedules import parse
    >>> parse("budget(0.3)").spec, parse("aesam").spec, parse("aesam(l1=-1, l2=1)").spec
    ('budget(0.3)', 'aesam', 'aesam')

Specs are `name`, `name(x)` (first parameter) or `name(k=x, ...)`; parameters left out take their
defaults and the canonical spec lists only the ones that differ (so equal policies hash equally).
`Policy` answers the `Schedule` questions the rest of the tool asks (`spec`, `family`, `params`,
`p`, `expected_extra`, `closed_form_extra`): for a policy these are its *nominal* p(τ), the
fraction of SAM steps it aims at (budget: d; AE-SAM: P(N(0,1) ≥ c(τ)) under the paper's normal
model of ‖g‖²). What a run really spent is `realized_extra` in the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rstsweep.errors import ScheduleError
from rstsweep.schedules.coins import uniforms
from rstsweep.schedules.families import NAME_RE, Curve, Param, format_number

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

SIGNAL_LAG = 2


@dataclass(frozen=True)
class PolicyParam(Param):
    """A policy parameter: its range and its default (None: required)."""

    default: float | None = None


class Controller:
    """The per-run state machine of a policy: `probability(t, signal)` gives p_t, then `record`
    is told the coin X_t. `signal` is ‖g‖² of step t − lag (NaN for the first `lag` steps)."""

    def probability(self, t: int, signal: float) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def record(self, t: int, x: bool) -> None:
        """Told the coin actually drawn at step t (controllers that track spending use it)."""


@dataclass(frozen=True)
class PolicyKind:
    """A registered policy: parameters, the controller factory, nominal p(τ), description."""

    name: str
    params: tuple[PolicyParam, ...]
    controller: Callable[..., Controller]  # controller(T, **params)
    nominal: Callable[..., ArrayLike]  # nominal(tau_array, **params) -> p in [0, 1]
    formula: str
    reference: str = ""


_POLICIES: dict[str, PolicyKind] = {}


def registered_policies() -> list[PolicyKind]:
    """All registered policies, built-ins first."""
    return list(_POLICIES.values())


def is_policy(name: str) -> bool:
    return name in _POLICIES


def find_policy(name: str) -> PolicyKind | None:
    """The registered policy `name`, or None."""
    return _POLICIES.get(name)


def register_policy(kind: PolicyKind, replace: bool = False) -> PolicyKind:
    """Register a policy so specs (`parse`) and YAML know its name."""
    if not NAME_RE.match(kind.name):
        raise ScheduleError(f"policy name {kind.name!r} must match [a-z_][a-z0-9_]*")
    if kind.name in _POLICIES and not replace:
        raise ScheduleError(f"policy {kind.name!r} is already registered")
    _POLICIES[kind.name] = kind
    return kind


@dataclass(frozen=True)
class Policy(Curve):
    """A validated policy instance, e.g. `budget(0.3)`; see the module docstring."""

    family: str
    params: dict[str, float] = field(default_factory=dict)
    is_policy = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _validated(self._kind, self.params))

    def __hash__(self) -> int:
        return hash(self.spec)

    def __str__(self) -> str:
        return self.spec

    @property
    def _kind(self) -> PolicyKind:
        return _POLICIES[self.family]

    @property
    def spec(self) -> str:
        """Canonical spec: only the parameters that differ from their defaults."""
        kind = self._kind
        given = [p for p in kind.params if p.default is None or self.params[p.name] != p.default]
        if not given:
            return self.family
        if len(given) == 1 and given[0] is kind.params[0]:
            return f"{self.family}({format_number(self.params[given[0].name])})"
        text = ", ".join(f"{p.name}={format_number(self.params[p.name])}" for p in given)
        return f"{self.family}({text})"

    @property
    def formula(self) -> str:
        return self._kind.formula

    @property
    def closed_form_formula(self) -> str:
        return "nominal"

    @property
    def param_a(self) -> float | None:
        return self.params[self._kind.params[0].name] if self._kind.params else None

    @property
    def param_b(self) -> float | None:
        kinds = self._kind.params
        return self.params[kinds[1].name] if len(kinds) > 1 else None

    def p(self, tau: ArrayLike) -> np.ndarray | np.floating:
        """The nominal p(τ) (what the policy aims at; the realized p_t depends on the run)."""
        tau_arr = np.asarray(tau, dtype=float)
        out = np.clip(
            np.broadcast_to(self._kind.nominal(tau_arr, **self.params), tau_arr.shape), 0.0, 1.0
        )
        return out[()] if out.ndim == 0 else out

    @property
    def closed_form_extra(self) -> float:
        tau = (np.arange(10_000) + 0.5) / 10_000
        return float(np.mean(self.p(tau)))

    def controller(self, T: int) -> Controller:
        """A fresh per-run controller for a run of T steps."""
        return self._kind.controller(int(T), **self.params)

    def draws(self, T: int, seed: int) -> np.ndarray:
        raise ScheduleError(
            f"{self.spec} is a policy: its coins depend on the run's signal (use replay)"
        )

    def replay(
        self, signals: Sequence[float] | np.ndarray, seed: int, lag: int = SIGNAL_LAG
    ) -> np.ndarray:
        """The coins X_0..X_{T-1} this policy draws given the per-step signals ‖g_t‖² (T = their
        count) and the cell's `signal_lag`: exactly what the trainer draws, so a run can be
        checked from its draws table."""
        return self.trace(signals, seed, lag)[1]

    def trace(
        self, signals: Sequence[float] | np.ndarray, seed: int, lag: int = SIGNAL_LAG
    ) -> tuple[np.ndarray, np.ndarray]:
        """(p_0..p_{T-1}, X_0..X_{T-1}) for the per-step signals, X_t = U_t < p_t, X_t decided
        from the signal of step t − lag."""
        signals = np.asarray(signals, dtype=np.float64)
        T = int(signals.size)
        u = uniforms(T, seed)
        ctl = self.controller(T)
        p = np.zeros(T)
        x = np.zeros(T, dtype=bool)
        for t in range(T):
            s = float(signals[t - lag]) if t >= lag else math.nan
            p[t] = ctl.probability(t, s)
            x[t] = bool(u[t] < p[t])
            ctl.record(t, bool(x[t]))
        return p, x


def _validated(kind: PolicyKind, params: Mapping[str, object]) -> dict[str, float]:
    names = [p.name for p in kind.params]
    for key in params:
        if key not in names:
            raise ScheduleError(
                f"{kind.name}: unknown parameter {key!r} (parameters: {', '.join(names)})"
            )
    out: dict[str, float] = {}
    for p in kind.params:
        value = params.get(p.name, p.default)
        if value is None:
            raise ScheduleError(f"{kind.name}: missing parameter {p.name} (in {p.range_text})")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ScheduleError(f"{kind.name}: parameter {p.name} = {value!r} is not a number")
        if not p.lo <= float(value) <= p.hi:
            raise ScheduleError(
                f"{kind.name}: parameter {p.name} = {format_number(value)} is not in {p.range_text}"
            )
        out[p.name] = float(format_number(value))
    return out


class EmaStats:
    """Exponential moving mean and variance of ‖g‖² as AE-SAM defines them (Jiang et al., ICLR
    2023, Sec. 3.1): μ_t = δ·μ_{t−1} + (1 − δ)·s_t, then σ²_t = δ·σ²_{t−1} + (1 − δ)·(s_t − μ_t)²
    (the deviation from the *updated* mean), from μ = σ² = 0 without bias correction.

    Under i.i.d. s these make the rule calibrated: s_t − μ_t = δ·(s_t − μ_{t−1}), so
    E[(s_t − μ_t)²] = δ²·Var(s)·2/(1 + δ) and s_t ≥ μ_t + c·σ_t ⇔ (s_t − μ_{t−1})/sd ≥ c with sd
    the standard deviation of s_t − μ_{t−1}: P(SAM) ≈ P(N(0, 1) ≥ c) once the mean has warmed up
    (about 1/(1 − δ) steps; before, μ and σ start low and lean to SAM)."""

    def __init__(self, delta: float) -> None:
        self.delta = delta
        self.mean = 0.0
        self.var = 0.0

    def update(self, s: float) -> None:
        d = self.delta
        self.mean = d * self.mean + (1.0 - d) * s
        self.var = d * self.var + (1.0 - d) * (s - self.mean) ** 2


class LegacyEmaStats(EmaStats):
    """The budget controller's standardisation of ‖g‖² (kept as it was, so budget cells compute
    what they did): σ²_t = δ·σ²_{t−1} + δ(1 − δ)·(s_t − μ_{t−1})², then the mean."""

    def update(self, s: float) -> None:
        d = self.delta
        self.var = d * self.var + d * (1.0 - d) * (s - self.mean) ** 2
        self.mean = d * self.mean + (1.0 - d) * s


def _normal_sf(x: np.ndarray) -> np.ndarray:
    """P(N(0, 1) ≥ x), vectorised via math.erfc (numpy has no erf)."""
    flat = [0.5 * math.erfc(v / math.sqrt(2.0)) for v in np.ravel(x)]
    return np.asarray(flat, dtype=float).reshape(np.shape(x))


def aesam_c(tau: np.ndarray | float, l1: float, l2: float) -> np.ndarray | float:
    """AE-SAM's threshold coefficient at training progress τ = t/T (Jiang et al., ICLR 2023,
    Sec. 3.1): c = τ·λ1 + (1 − τ)·λ2, from λ2 at the start to λ1 at the end. With λ1 < λ2 the
    bar falls, so SAM steps are rare early and frequent late."""
    return tau * l1 + (1.0 - tau) * l2


class AESAMController(Controller):
    """AE-SAM (Jiang, Yang, Zhang, Kwok, "An Adaptive Policy to Employ Sharpness-Aware
    Minimization", ICLR 2023, arXiv:2304.14647, Sec. 3.1): a SAM step iff s_t ≥ μ_t + c_t·σ_t, s
    = ‖g‖² of the first pass, μ_t and σ²_t its moving mean and variance (`EmaStats`, forgetting
    rate δ, updated with s_t before the comparison), c_t = (t/T)·λ1 + (1 − t/T)·λ2 (`aesam_c`).
    p_t ∈ {0, 1}, so U_t < p_t is exactly the threshold rule (no coin is wasted, CRN is kept).

    Defaults δ = 0.9, λ1 = −1, λ2 = 1 (½ SAM steps overall under the paper's normal model: ≈ 16 %
    at the start, ≈ 84 % at the end). Departure by default: s is the signal of step t − lag with
    lag = 2 (`signal_lag`; 0 is the published rule), and steps before the first signal are SAM
    steps. See docs/fidelity.md for what could not be checked against the paper's text."""

    def __init__(self, T: int, l1: float, l2: float, delta: float) -> None:
        self.T, self.l1, self.l2 = T, l1, l2
        self.stats = EmaStats(delta)

    def threshold_c(self, t: int) -> float:
        return float(aesam_c(t / self.T, self.l1, self.l2))

    def probability(self, t: int, signal: float) -> float:
        if not math.isfinite(signal):
            return 1.0
        self.stats.update(signal)
        bound = self.stats.mean + self.threshold_c(t) * math.sqrt(self.stats.var)
        return 1.0 if signal >= bound else 0.0


class BudgetController(Controller):
    """Spend a target share d of SAM steps where ‖g‖² is high, and track d over the run.

    z = (s − μ)/σ standardises the lagged ‖g‖² with moving statistics (`LegacyEmaStats`, δ =
    0.9); the weight w = exp(β·z − β²/2) has mean 1 when z ~ N(0, 1), so d·w spends d on average
    but more on high-norm steps. The deficit D_t = d·t − (SAM steps taken before t) feeds back:
    p_t = clip(d·w + κ·D_t, 0, 1). D is mean-reverting at rate κ, so its spread stays near
    √(d(1−d)/(2κ)) steps and the realized share (d·T − D_T)/T tracks d within O(1/T), tighter
    than the binomial √(d(1−d)/T) of a constant schedule. κ is at least 20/T, so short runs
    close their deficit within a twentieth of training (a falling ‖g‖² makes z, and so w, lean
    low)."""

    def __init__(self, T: int, d: float, beta: float, kappa: float) -> None:
        self.d, self.beta = d, beta
        self.kappa = max(kappa, 20.0 / max(T, 1))
        self.stats: EmaStats = LegacyEmaStats(0.9)
        self.taken = 0

    def probability(self, t: int, signal: float) -> float:
        weight = 1.0
        if math.isfinite(signal):
            self.stats.update(signal)
            sd = math.sqrt(self.stats.var)
            z = (signal - self.stats.mean) / sd if sd > 0 else 0.0
            weight = math.exp(min(self.beta * z - self.beta**2 / 2, 50.0))
        deficit = self.d * t - self.taken
        return min(1.0, max(0.0, self.d * weight + self.kappa * deficit))

    def record(self, t: int, x: bool) -> None:
        self.taken += int(x)


def _register_builtins() -> None:
    register_policy(
        PolicyKind(
            "aesam",
            (
                PolicyParam("l1", -5.0, 5.0, -1.0),
                PolicyParam("l2", -5.0, 5.0, 1.0),
                PolicyParam("delta", 0.0, 0.999, 0.9),
            ),
            AESAMController,
            lambda tau, l1, l2, delta: _normal_sf(aesam_c(tau, l1, l2)),
            "SAM iff ‖g‖² ≥ μ + c·σ, c = τ·l1 + (1 − τ)·l2",
            "Jiang et al., ICLR 2023",
        )
    )
    register_policy(
        PolicyKind(
            "budget",
            (
                PolicyParam("d", 0.0, 1.0),
                PolicyParam("beta", 0.0, 5.0, 1.0),
                PolicyParam("kappa", 0.0, 1.0, 0.01),
            ),
            BudgetController,
            lambda tau, d, beta, kappa: np.full_like(tau, d),
            "clip(d·exp(β·z − β²/2) + κ·deficit, 0, 1), z = standardised ‖g‖²",
        )
    )


_register_builtins()
