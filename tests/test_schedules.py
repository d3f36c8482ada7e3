"""Tests for rstsweep.schedules: families vs hand-derived sums, parsing, coins, groups, registry."""

from __future__ import annotations

import doctest
import itertools
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, field_validator

import rstsweep.schedules as schedules_pkg
from rstsweep.errors import RstError
from rstsweep.schedules import (
    ScheduleError,
    linear_group,
    make,
    parse,
    piecewise_group,
    register_family,
    registered_families,
    uniforms,
)
from rstsweep.schedules import families as families_mod
from rstsweep.schedules.listing import example_schedules, schedule_rows

unit = st.floats(0.0, 1.0, allow_nan=False)
steps = st.integers(1, 3000)
BUILTINS = ["constant", "piecewise", "linear", "cos1", "cos2", "sin1", "sin2"]


@st.composite
def linear_params(draw: st.DrawFn) -> tuple[float, float]:
    b = draw(unit)
    return draw(st.floats(-b, 1.0 - b, allow_nan=False)), b


@st.composite
def valid_schedules(draw: st.DrawFn):
    family = draw(st.sampled_from(BUILTINS))
    if family == "constant":
        return make("constant", a=draw(unit))
    if family == "piecewise":
        return make("piecewise", a=draw(unit), b=draw(unit))
    if family == "linear":
        a, b = draw(linear_params())
        return make("linear", a=a, b=b)
    return parse(family)


@pytest.fixture
def scratch_families():
    """Registers made by a test are removed afterwards (the registry is process-global)."""
    before = dict(families_mod._REGISTRY)
    yield
    families_mod._REGISTRY.clear()
    families_mod._REGISTRY.update(before)


# --- discrete Δη against sums derived by hand ------------------------------------------------


@given(a=unit, T=steps)
def test_constant_discrete_mean_is_a(a: float, T: int) -> None:
    s = make("constant", a=a)
    assert s.expected_extra(T) == pytest.approx(s.params["a"], abs=1e-12)
    assert s.closed_form_extra == pytest.approx(s.params["a"], abs=1e-15)


@given(a=unit, k=st.integers(0, 100), T=steps)
def test_piecewise_discrete_mean_counts_steps_before_b(a: float, k: int, T: int) -> None:
    s = parse(f"piecewise(a={a!r}, b={k / 100!r})")
    a = s.params["a"]
    n_before = math.ceil(Fraction(k, 100) * T)  # #{t : t/T < k/100}, in exact arithmetic
    want = (a * n_before + (1 - a) * (T - n_before)) / T
    assert s.expected_extra(T) == pytest.approx(want, abs=1e-12)
    assert s.closed_form_extra == pytest.approx(a * k / 100 + (1 - a) * (1 - k / 100), abs=1e-12)


@given(ab=linear_params(), T=steps)
def test_linear_discrete_mean(ab: tuple[float, float], T: int) -> None:
    s = make("linear", a=ab[0], b=ab[1])
    a, b = s.params["a"], s.params["b"]
    assert s.expected_extra(T) == pytest.approx(a * (T - 1) / (2 * T) + b, abs=1e-12)
    assert s.closed_form_extra == pytest.approx(a / 2 + b, abs=1e-15)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 10, 100, 1001, 50_000])
def test_trig_discrete_means_match_geometric_sums(T: int) -> None:
    # Σ_{t<T} e^{iπt/T} = 2/(1 − e^{iπ/T}) = 1 + i·cot(π/2T): Σcos = 1, Σsin = cot(π/2T).
    sum_sin = 1 / math.tan(math.pi / (2 * T))
    assert parse("cos1").expected_extra(T) == pytest.approx(0.5 + 0.5 / T, abs=1e-12)
    assert parse("cos2").expected_extra(T) == pytest.approx(0.5 - 0.5 / T, abs=1e-12)
    assert parse("sin1").expected_extra(T) == pytest.approx(sum_sin / T, abs=1e-12)
    assert parse("sin2").expected_extra(T) == pytest.approx(1 - sum_sin / T, abs=1e-12)


def test_closed_forms_of_the_paper_table() -> None:
    got = {s.family: s.closed_form_extra for s in example_schedules()}
    want = {"constant": 0.5, "piecewise": 0.5, "linear": 0.5, "cos1": 0.5, "cos2": 0.5}
    want |= {"sin1": 2 / math.pi, "sin2": 1 - 2 / math.pi}
    assert got == pytest.approx(want, abs=1e-15)


@given(s=valid_schedules())
@settings(max_examples=60)
def test_discrete_mean_converges_to_closed_form(s) -> None:
    # A left Riemann sum of a function of total variation V is within V/T of its integral.
    fine = s.p(np.linspace(0.0, 1.0 - 1e-12, 200_001))
    variation = float(np.abs(np.diff(fine)).sum())
    for T in (10, 100, 1000, 10_000):
        assert abs(s.expected_extra(T) - s.closed_form_extra) <= variation / T + 1e-12


# --- p(τ) and validation ---------------------------------------------------------------------


@given(s=valid_schedules(), tau=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1))
def test_p_stays_in_unit_interval(s, tau: list[float]) -> None:
    p = s.p(np.array(tau))
    assert p.shape == (len(tau),)
    assert np.all((p >= 0.0) & (p <= 1.0))


def test_p_matches_formulas_pointwise() -> None:
    tau = np.array([0.0, 0.1, 0.29, 0.3, 0.5, 0.99])
    np.testing.assert_allclose(parse("piecewise(0.2, 0.3)").p(tau), [0.2, 0.2, 0.2, 0.8, 0.8, 0.8])
    np.testing.assert_allclose(parse("linear(a=-0.5, b=0.6)").p(tau), 0.6 - 0.5 * tau)
    np.testing.assert_allclose(parse("cos2").p(tau), (1 - np.cos(np.pi * tau)) / 2)
    np.testing.assert_allclose(parse("sin2").p(tau), 1 - np.sin(np.pi * tau))
    assert isinstance(parse("sin1").p(0.5), float | np.floating)
    assert float(parse("sin1").p(0.5)) == pytest.approx(1.0)
    np.testing.assert_allclose(
        parse("cos1").probabilities(4), [1, 0.5 + 0.5**1.5, 0.5, 0.5 - 0.5**1.5]
    )


@given(a=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9)))
def test_constant_out_of_range_raises(a: float) -> None:
    with pytest.raises(ScheduleError, match=r"parameter a = .* not in \[0, 1\]"):
        make("constant", a=a)


@given(good=unit, bad=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9)),
       which=st.sampled_from("ab"))  # fmt: skip
def test_piecewise_out_of_range_raises(good: float, bad: float, which: str) -> None:
    params = {"a": good, "b": good, which: bad}
    with pytest.raises(ScheduleError, match=rf"parameter {which} = .* not in \[0, 1\]"):
        make("piecewise", **params)


@given(b=unit, excess=st.floats(1e-6, 1.0))
def test_linear_leaving_unit_interval_raises(b: float, excess: float) -> None:
    with pytest.raises(
        ScheduleError, match=r"a \+ b = .* not in \[0, 1\]|parameter a = .* not in \[-1, 1\]"
    ):
        make("linear", a=1.0 - b + excess, b=b)  # p(1) = 1 + excess
    with pytest.raises(
        ScheduleError, match=r"a \+ b = .* not in \[0, 1\]|parameter a = .* not in \[-1, 1\]"
    ):
        make("linear", a=-b - excess, b=b)  # p(1) = -excess


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("constant(1.5)", "parameter a = 1.5 is not in [0, 1]"),
        ("constant(-0.1)", "parameter a = -0.1 is not in [0, 1]"),
        ("piecewise(a=2)", "parameter a = 2 is not in [0, 1]"),
        ("piecewise(a=0.5)", "missing parameter b (in [0, 1])"),
        ("piecewise(a=0.5, b=1.2)", "parameter b = 1.2 is not in [0, 1]"),
        ("linear(a=1, b=0.5)", "a + b = 1.5 is not in [0, 1]"),
        ("linear(a=2, b=0)", "parameter a = 2 is not in [-1, 1]"),
        ("nosuch", "unknown schedule family 'nosuch'"),
        ("constant", "missing parameter a"),
        ("constant(", "malformed"),
        ("constant(0.5))", "cannot read argument"),
        ("constant(nan)", "cannot read argument 'nan'"),
        ("constant(__import__('os'))", "cannot read argument"),
        ("constant(0.1, 0.2)", "takes 1 parameter"),
        ("constant(x=0.1)", "unknown parameter 'x'"),
        ("piecewise(b=0.3, 0.5)", "positional argument after keyword"),
        ("piecewise(a=0, a=0.3)", "parameter a given twice"),
        ("cos1(0.5)", "takes 0 parameter"),
        ("", "malformed"),
    ],
)
def test_bad_specs_raise_one_line_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, RstError)
    assert isinstance(info.value, ValueError)


def test_schedule_error_becomes_pydantic_validation_error() -> None:
    class Model(BaseModel):
        schedule: str

        @field_validator("schedule")
        @classmethod
        def _check(cls, v: str) -> str:
            return parse(v).spec

    assert Model(schedule="constant( .5 )").schedule == "constant(0.5)"
    with pytest.raises(ValidationError, match=r"parameter a = 2 is not in \[0, 1\]"):
        Model(schedule="piecewise(a=2)")


# --- canonical specs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("constant(0.5)", "constant(0.5)"),
        ("constant(a=0.5)", "constant(0.5)"),
        (" Constant( .50 ) ", "constant(0.5)"),
        ("constant(1)", "constant(1)"),
        ("constant(-0.0)", "constant(0)"),
        ("piecewise(0, 0.3)", "piecewise(a=0, b=0.3)"),
        ("piecewise(b=3e-1, a=0)", "piecewise(a=0, b=0.3)"),
        (f"linear(a={2 * 0.3!r}, b={2 * 0.7 - 1!r})", "linear(a=0.6, b=0.4)"),
        ("cos1", "cos1"),
        ("sin2()", "sin2"),
    ],
)
def test_canonical_spec(spec: str, canonical: str) -> None:
    s = parse(spec)
    assert s.spec == canonical
    assert parse(canonical) == s and hash(parse(canonical)) == hash(s)


@given(s=valid_schedules())
def test_spec_round_trip(s) -> None:
    again = parse(s.spec)
    assert again.spec == s.spec
    assert again.params == s.params  # params are stored rounded, so p is identical too
    assert again == s


def test_schedule_attributes() -> None:
    s = parse("linear(a=0.8, b=0.1)")
    assert (s.family, s.params, s.param_a, s.param_b) == ("linear", {"a": 0.8, "b": 0.1}, 0.8, 0.1)
    assert s.formula == "a·τ + b"
    assert (parse("constant(0.2)").param_a, parse("constant(0.2)").param_b) == (0.2, None)
    assert (parse("cos1").param_a, parse("cos1").params) == (None, {})
    with pytest.raises(AttributeError):
        s.family = "constant"  # frozen


# --- coins -----------------------------------------------------------------------------------


def test_uniforms_are_pcg64_with_the_fixed_salt() -> None:
    # The salt is part of the data contract: changing it changes every stored experiment.
    independent = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([7, 0x525354434F494E]))
    ).random(100)
    np.testing.assert_array_equal(uniforms(100, 7), independent)
    assert not np.array_equal(uniforms(100, 7), np.random.default_rng(7).random(100))
    assert not np.array_equal(uniforms(100, 7), uniforms(100, 8))


@given(seed=st.integers(0, 2**63), n=st.integers(0, 300), extra=st.integers(0, 300))
@settings(max_examples=30)
def test_uniforms_are_prefix_stable(seed: int, n: int, extra: int) -> None:
    short, long = uniforms(n, seed), uniforms(n + extra, seed)
    np.testing.assert_array_equal(long[:n], short)
    assert np.all((long >= 0.0) & (long < 1.0))


@pytest.mark.parametrize(("T", "seed"), [(-1, 0), (10, -1), (1.5, 0), (10, 0.5), (True, 0)])
def test_uniforms_reject_bad_arguments(T, seed) -> None:
    with pytest.raises(ScheduleError):
        uniforms(T, seed)


def test_draws_are_uniforms_below_p() -> None:
    s = parse("linear(a=0.8, b=0.1)")
    u, p = uniforms(500, 3), 0.8 * np.arange(500) / 500 + 0.1
    d = s.draws(500, 3)
    assert d.dtype == np.bool_ and d.shape == (500,)
    np.testing.assert_array_equal(d, u < p)
    assert not parse("constant(0)").draws(500, 3).any()
    assert parse("constant(1)").draws(500, 3).all()


def test_draws_identical_in_a_separate_process() -> None:
    specs = ["constant(0.5)", "piecewise(a=0.2, b=0.6)", "linear(a=0.8, b=0.1)", "sin1"]
    code = (
        "import sys; from rstsweep.schedules import parse\n"
        "for spec in sys.argv[1:]:\n"
        "    print(parse(spec).draws(2000, 12345).astype(int).tobytes().hex())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *specs], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()  # fmt: skip
    here = [parse(spec).draws(2000, 12345).astype(int).tobytes().hex() for spec in specs]
    assert out == here


@given(s1=valid_schedules(), s2=valid_schedules(), seed=st.integers(0, 10**6))
@settings(max_examples=40)
def test_common_random_numbers_are_monotone(s1, s2, seed: int) -> None:
    T = 400
    below = s1.probabilities(T) <= s2.probabilities(T)
    d1, d2 = s1.draws(T, seed), s2.draws(T, seed)
    assert not np.any(d1[below] & ~d2[below])  # p1 ≤ p2 at t ⇒ X1_t ≤ X2_t


def test_crn_nested_constants() -> None:
    ladder = [parse(f"constant({a})").draws(1000, 9) for a in (0.1, 0.3, 0.5, 0.9)]
    for lo, hi in itertools.pairwise(ladder):
        assert np.all(lo <= hi) and lo.sum() < hi.sum()


@pytest.mark.parametrize("schedule", [*example_schedules(), parse("piecewise(a=0.3, b=0.7)")],
                         ids=str)  # fmt: skip
def test_realized_mean_within_four_binomial_sd(schedule) -> None:
    T = 20_000
    p = schedule.probabilities(T)
    sd = math.sqrt(float(np.sum(p * (1 - p)))) / T
    for seed in (0, 1, 2):
        realized = schedule.draws(T, seed).mean()
        assert abs(realized - schedule.expected_extra(T)) <= 4 * sd + 1e-12


# --- the paper's groups ----------------------------------------------------------------------


@given(v=unit)
def test_piecewise_groups(v: float) -> None:
    g1, g2, g3 = (piecewise_group(g, v) for g in (1, 2, 3))
    v = float(schedules_pkg.format_number(v))
    assert (g1.param_a, g1.param_b, g2.param_a, g2.param_b) == (0.0, v, 1.0, v)
    assert (g3.param_a, g3.param_b) == (v, 0.5)
    assert g1.closed_form_extra == pytest.approx(1 - v, abs=1e-12)
    assert g2.closed_form_extra == pytest.approx(v, abs=1e-12)
    assert g3.closed_form_extra == pytest.approx(0.5, abs=1e-12)


@given(v=unit)
def test_linear_groups_pass_through_their_points(v: float) -> None:
    g1, g2 = linear_group(1, v), linear_group(2, v)
    a, b = g1.param_a, g1.param_b
    assert a / 2 + b == pytest.approx(v, abs=1e-11)  # through (½, m)
    assert g1.closed_form_extra == pytest.approx(v, abs=1e-11)
    end = (0.0, 0.0) if v <= 0.5 else (1.0, 1.0)  # and through (0, 0) or (1, 1)
    assert a * end[0] + b == pytest.approx(end[1], abs=1e-11)
    assert g2.param_a / 2 + g2.param_b == pytest.approx(0.5, abs=1e-11)  # through (½, ½)
    assert g2.param_b == pytest.approx(v, abs=1e-11)  # and (0, b)
    assert g2.closed_form_extra == pytest.approx(0.5, abs=1e-11)


def test_linear_group_specs_are_tidy() -> None:
    assert linear_group(1, 0.7).spec == "linear(a=0.6, b=0.4)"
    assert linear_group(1, 0.3).spec == "linear(a=0.6, b=0)"
    assert linear_group(2, 0.2).spec == "linear(a=0.6, b=0.2)"


@pytest.mark.parametrize(
    ("fn", "group", "value", "fragment"),
    [
        (piecewise_group, 4, 0.5, "4 is not one of 1, 2, 3"),
        (piecewise_group, 1, 1.5, "b = 1.5 is not in [0, 1]"),
        (piecewise_group, 3, -0.5, "a = -0.5 is not in [0, 1]"),
        (linear_group, 3, 0.5, "3 is not one of 1, 2"),
        (linear_group, 1, 1.1, "m = 1.1 is not in [0, 1]"),
        (linear_group, 2, -0.1, "b = -0.1 is not in [0, 1]"),
    ],
)
def test_group_helpers_reject_bad_input(fn, group: int, value: float, fragment: str) -> None:
    with pytest.raises(ScheduleError) as info:
        fn(group, value)
    assert fragment in str(info.value)


# --- user families and the table -------------------------------------------------------------


def test_register_family(scratch_families) -> None:
    register_family("tri", lambda tau, h: h * (1 - np.abs(2 * tau - 1)), [("h", 0.0, 1.0)],
                    formula="h·(1 − |2τ − 1|)", example={"h": 1.0})  # fmt: skip
    s = parse("tri(h=0.8)")
    assert s.spec == "tri(0.8)" and s.formula == "h·(1 − |2τ − 1|)"
    assert s.closed_form_extra == pytest.approx(0.4, abs=1e-9)  # numeric integral when omitted
    assert s.expected_extra(1000) == pytest.approx(0.4, abs=1e-3)
    with pytest.raises(ScheduleError, match=r"parameter h = 2 is not in \[0, 1\]"):
        parse("tri(2)")
    assert [row["family"] for row in schedule_rows(10, [])][-1] == "tri"
    with pytest.raises(ScheduleError, match="already registered"):
        register_family("tri", lambda tau: tau)


def test_register_family_rejects_p_outside_unit_interval(scratch_families) -> None:
    with pytest.raises(ScheduleError, match=r"outside \[0, 1\]"):
        register_family("double", lambda tau, k: k * tau, [("k", 0.0, 2.0)], example={"k": 2.0})
    assert "double" not in {f.name for f in registered_families()}
    register_family("double", lambda tau, k: k * tau, [("k", 0.0, 2.0)], example={"k": 1.0})
    with pytest.raises(ScheduleError, match=r"outside \[0, 1\]"):
        parse("double(1.5)")  # in k's range, but p would leave [0, 1]: rejected, not clipped


def test_package_docstring_examples(scratch_families) -> None:
    result = doctest.testmod(schedules_pkg, verbose=False)
    assert result.attempted >= 5 and result.failed == 0


def test_schedule_rows() -> None:
    rows = schedule_rows(10, ["linear(a=0.8, b=0.1)"])
    assert [r["family"] for r in rows] == [*BUILTINS, "linear"]
    assert [r["extra"] for r in rows] == [False] * 7 + [True]
    by_spec = {r["spec"]: r for r in rows}
    # T = 10 by hand: piecewise(a=0, b=0.5) is 1 on t = 5..9; linear(a=1, b=0) averages 0.45.
    assert by_spec["piecewise(a=0, b=0.5)"]["expected_extra"] == pytest.approx(0.5)
    assert by_spec["linear(a=1, b=0)"]["expected_extra"] == pytest.approx(0.45)
    assert by_spec["linear(a=0.8, b=0.1)"]["expected_extra"] == pytest.approx(0.8 * 0.45 + 0.1)
    assert by_spec["sin1"]["closed_form_extra"] == pytest.approx(2 / math.pi)
    assert by_spec["constant(0.5)"]["steps"] == 10
    assert by_spec["linear(a=1, b=0)"]["closed_form_formula"] == "a/2 + b"
    with pytest.raises(ScheduleError):
        schedule_rows(10, ["constant(2)"])
