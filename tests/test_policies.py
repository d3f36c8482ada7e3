"""Closed-loop step policies (`rstsweep.schedules.policies`, `rstsweep.trainers.draws`): the AE-SAM
rule against a hand-computed sequence, common random numbers, the budget controller's tracking,
specs, the trainer's draw source, resume, and the store's signal column."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from factories import crash_after_epoch, tiny_config
from rstsweep.core.config import CellConfig
from rstsweep.schedules import SALT, SIGNAL_LAG, Policy, ScheduleError, parse
from rstsweep.store.rows import draws_row, pack_signal, unpack_signal
from rstsweep.trainers.draws import PolicyDraws

# ‖g_t‖² of 8 steps; by hand with δ = 0.5, λ1 = −1, λ2 = 1: c_t = (t/8)·λ1 + (1 − t/8)·λ2
# = 1 − t/4, μ_t = ½μ + ½s, then σ²_t = ½σ² + ½(s − μ_t)² (Jiang et al. 2023), from 0; lag 2:
#   t=0,1 no signal yet                                   -> SAM
#   t=2 sees 4:   μ=2,   σ²=½·2²=2,             c=½,  bound 2+½·1.414=2.707    4 ≥   -> 1
#   t=3 sees 2:   μ=2,   σ²=1+0=1,              c=¼,  bound 2+¼·1=2.25         2 <   -> 0
#   t=4 sees 8:   μ=5,   σ²=½+½·3²=5,           c=0,  bound 5                  8 ≥   -> 1
#   t=5 sees 1:   μ=3,   σ²=2.5+½·2²=4.5,       c=−¼, bound 3−¼·2.121=2.47     1 <   -> 0
#   t=6 sees 4.6: μ=3.8, σ²=2.25+½·0.8²=2.57,   c=−½, bound 3.8−½·1.603=3.00   4.6 ≥ -> 1
#   t=7 sees 10:  μ=6.9, σ²=1.285+½·3.1²=6.09,  c=−¾, bound 6.9−¾·2.468=5.05   10 ≥  -> 1
SIGNALS = [4.0, 2.0, 8.0, 1.0, 4.6, 10.0, 0.0, 0.0]
AESAM_BY_HAND = [1, 1, 1, 0, 1, 0, 1, 1]
# lag 0 (the published rule: step t decides from its own s_t), same statistics:
#   t=0 s=4: c=1, bound 2+1.414=3.41 -> 1;   t=1 s=2: c=¾, bound 2+¾=2.75 -> 0
#   t=2 s=8: c=½, bound 5+½·2.236=6.12 -> 1; t=3 s=1: c=¼, bound 3+¼·2.121=3.53 -> 0
#   t=4 s=4.6: c=0, bound 3.8 -> 1;          t=5 s=10: c=−¼, bound 6.9−¼·2.468=6.28 -> 1
#   t=6 s=0: μ=3.45, σ²=3.045+½·3.45²=8.996, c=−½, bound 3.45−½·2.999=1.95 -> 0
#   t=7 s=0: μ=1.725, σ²=4.498+½·1.725²=5.986, c=−¾, bound 1.725−¾·2.447=−0.11 -> 1
AESAM_LAG0_BY_HAND = [1, 0, 1, 0, 1, 1, 0, 1]
AESAM_SPEC = "aesam(l1=-1, l2=1, delta=0.5)"


def test_aesam_rule_matches_the_hand_computed_sequence():
    assert SIGNAL_LAG == 2  # the table above assumes it
    draws = parse(AESAM_SPEC).replay(SIGNALS, seed=0)
    assert draws.astype(int).tolist() == AESAM_BY_HAND
    # threshold rule: p_t ∈ {0, 1}, so the seed cannot matter
    assert np.array_equal(parse(AESAM_SPEC).replay(SIGNALS, seed=7), draws)
    # c matters: with c ≡ 0 step 3 (2 ≥ μ = 2) becomes a SAM step
    flat = parse("aesam(l1=0, l2=0, delta=0.5)").replay(SIGNALS, seed=0)
    assert flat.astype(int).tolist() == [1, 1, 1, 1, 1, 0, 1, 1]
    exact = parse(AESAM_SPEC).replay(SIGNALS, seed=0, lag=0)
    assert exact.astype(int).tolist() == AESAM_LAG0_BY_HAND


@pytest.mark.parametrize("lag", [0, 2])
def test_aesam_spends_more_sam_steps_late_than_early_by_the_formula(lag):
    """A stationary signal alternating m ± a: in steady state μ after a high step is
    m + a(1−δ)/(1+δ), so s − μ = ±2δa/(1+δ) at every step, (s − μ)² is constant and σ equals
    |s − μ|: high steps are SAM iff c_t ≤ 1, low steps iff c_t ≤ −1. With λ2 = 2, λ1 = −2,
    c_t = 2 − 4t/T crosses 1 at t = T/4 and −1 at t = 3T/4, so the first third spends
    ½·(1/3 − 1/4)/(1/3) = 1/8 and the last ½ + ½·(1 − 3/4)/(1/3) = 7/8: 3/4 more."""
    T = 1201  # c_t never equals ±1 exactly at an integer step (no ties)
    signals = np.where(np.arange(T) % 2 == 0, 10.0, 6.0)
    x = parse("aesam(l1=-2, l2=2, delta=0.5)").replay(signals, seed=0, lag=lag)
    first, _, last = np.array_split(x.astype(float), 3)
    assert first.mean() == pytest.approx(1 / 8, abs=0.01)
    assert last.mean() == pytest.approx(7 / 8, abs=0.01)
    assert last.mean() - first.mean() == pytest.approx(3 / 4, abs=0.01)
    # the nominal share under the normal model leans the same way
    nominal = parse("aesam").p(np.array([0.1, 0.5, 0.9]))
    assert nominal[0] < 0.5 - 0.1 and nominal[1] == pytest.approx(0.5) and nominal[2] > 0.6


def test_trainer_draw_source_decides_like_replay():
    """The trainer's per-step source (signals fed as device tensors) draws what replay draws."""
    policy = parse(AESAM_SPEC)
    source = PolicyDraws(policy, len(SIGNALS), seed=0, device=torch.device("cpu"))
    for t, s in enumerate(SIGNALS):
        source.decide(t)
        source.observe(t, torch.tensor([s, 0.5]))
    source.flush()
    assert source.draws.astype(int).tolist() == AESAM_BY_HAND
    np.testing.assert_array_equal(source.signals, np.float32(SIGNALS))
    # a restored source (replaying the signals) continues in the same controller state
    restored = PolicyDraws(policy, len(SIGNALS), seed=0, device=torch.device("cpu"))
    restored.restore(5, source.signals)
    assert [restored.decide(t) for t in (5, 6, 7)] == [False, True, True]
    # lag 0: nothing decided before the step; decided from the step's own signal
    exact = PolicyDraws(policy, len(SIGNALS), seed=0, device=torch.device("cpu"), lag=0)
    got = []
    for t, s in enumerate(SIGNALS):
        assert exact.decide(t) is None
        got.append(int(exact.decide_now(t, torch.tensor([s, 0.5]))))
    assert got == AESAM_LAG0_BY_HAND
    again = PolicyDraws(policy, len(SIGNALS), seed=0, device=torch.device("cpu"), lag=0)
    again.restore(6, exact.signals)
    assert again.draws[:6].astype(int).tolist() == AESAM_LAG0_BY_HAND[:6]


def _uniforms(T: int, seed: int) -> np.ndarray:
    """An independent copy of the coin stream's definition."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, SALT]))).random(T)


def test_common_random_numbers_across_policies_and_schedules():
    rng = np.random.default_rng(1)
    signals = rng.lognormal(0.0, 0.5, size=3000)
    seed, T = 11, signals.size
    u = _uniforms(T, seed)
    traces = {
        spec: parse(spec).trace(signals, seed) for spec in ("aesam", "budget(0.3)", "budget(0.5)")
    }
    for p, x in traces.values():
        np.testing.assert_array_equal(x, u < p)  # the same U_t whatever the policy
    # and the same U_t as a schedule of that seed: constant(0.5) draws U < 0.5
    np.testing.assert_array_equal(parse("constant(0.5)").draws(T, seed), u < 0.5)
    # coupling: where one policy's p_t is at least another's, its coin is at least as often 1
    (pa, xa), (pb, xb) = traces["budget(0.5)"], traces["budget(0.3)"]
    higher = pa >= pb
    assert np.all(xa[higher] >= xb[higher])


@pytest.mark.parametrize("d", [0.1, 0.3, 0.5, 0.9])
def test_budget_tracks_its_target_within_a_binomial_band(d):
    T = 40_000
    rng = np.random.default_rng(int(d * 100))
    # a drifting, bursty ‖g‖²: decays over training, lognormal noise, occasional spikes
    trend = np.exp(-3 * np.arange(T) / T)
    signals = trend * rng.lognormal(0.0, 0.7, T) * np.where(rng.random(T) < 0.02, 5.0, 1.0)
    _, x = parse(f"budget({d})").trace(signals, seed=3)
    band = 3 * math.sqrt(d * (1 - d) / T)
    assert abs(x.mean() - d) <= band
    # ...and along the way: every tenth of the run spends d within a band of its own
    for part in np.array_split(x, 10):
        assert abs(part.mean() - d) <= 4 * math.sqrt(d * (1 - d) / part.size)
    # it spends where ‖g‖² is high: X_t is decided from signal t − lag
    seen = signals[:-SIGNAL_LAG] / trend[:-SIGNAL_LAG]
    chosen = x[SIGNAL_LAG:]
    if d < 0.9:
        assert seen[chosen].mean() > 1.2 * seen[~chosen].mean()


def test_policy_specs_defaults_and_errors():
    assert parse("aesam").spec == parse("aesam(l1=-1, l2=1, delta=0.9)").spec == "aesam"
    assert parse("budget(d=0.3)").spec == "budget(0.3)"
    assert parse("budget(0.3, beta=2)").spec == "budget(d=0.3, beta=2)"
    assert isinstance(parse("budget(0.3)"), Policy) and parse("budget(0.3)").is_policy
    assert not parse("constant(0.3)").is_policy
    # nominal share: budget d; AE-SAM P(N(0,1) ≥ c) averaged over c from −1 to 1 = ½
    assert parse("budget(0.3)").closed_form_extra == pytest.approx(0.3)
    assert parse("aesam").closed_form_extra == pytest.approx(0.5, abs=1e-6)
    for bad, needle in [
        ("budget", "missing parameter d"),
        ("budget(1.5)", "d = 1.5 is not in [0, 1]"),
        ("aesam(q=1)", "unknown parameter 'q'"),
        ("aesam(l1=9)", "l1 = 9 is not in [-5, 5]"),
    ]:
        with pytest.raises(ScheduleError, match=needle.replace("[", r"\[").replace("(", r"\(")):
            parse(bad)
    with pytest.raises(ScheduleError, match="policy"):
        parse("aesam").draws(10, 0)
    # valid everywhere a schedule is: the cell config canonicalises and hashes it
    a = CellConfig(schedule="aesam(l1=-1, l2=1)")
    assert a.schedule == "aesam" and a.cell_id() == CellConfig(schedule="aesam").cell_id()
    # the decision lag is in cell_id only for policy cells that set it away from 2
    assert CellConfig(schedule="aesam", signal_lag=2).cell_id() == a.cell_id()
    assert CellConfig(schedule="aesam", signal_lag=0).cell_id() != a.cell_id()
    assert CellConfig(signal_lag=0).cell_id() == CellConfig().cell_id()  # a schedule: no lag
    with pytest.raises(ValueError, match=r"signal_lag: 0 .* esam"):
        CellConfig(schedule="aesam", signal_lag=0, algorithm="esam")


def test_signal_column_round_trip():
    signal = np.float32([1.5, 2.25, np.nan, 3.0])
    row = draws_row("c", "a", np.array([1, 0, 1, 1], dtype=bool), signal)
    back = unpack_signal(row["signal"])
    np.testing.assert_array_equal(back, signal)
    assert draws_row("c", "a", np.ones(3, dtype=bool))["signal"] is None
    assert pack_signal(None) is None and unpack_signal(None) is None
    with pytest.raises(ValueError, match="signal has 2 values for 3 draws"):
        draws_row("c", "a", np.ones(3, dtype=bool), np.zeros(2))


def test_policy_cell_trains_resumes_and_replays(tmp_path):
    """A tiny AE-SAM run: its draws equal the replay of its recorded signals, and a crash after
    epoch 1 then resume ends with the same draws, signals and weights."""
    from rstsweep.trainers import loop

    cfg = tiny_config(
        train_subset=192, test_subset=64, batch_size=32, epochs=2, seed=5, lr=0.05,
        schedule="budget(0.5)",
    )  # fmt: skip
    straight = loop.train(cfg, out_dir=tmp_path / "straight")
    assert straight.signals is not None and straight.signals.size == straight.steps == 12
    assert np.all(np.isfinite(straight.signals)) and np.all(straight.signals > 0)
    np.testing.assert_array_equal(
        parse(cfg.schedule).replay(straight.signals, cfg.seed), straight.draws
    )

    # the published rule (lag 0): each step decides from its own first pass
    exact_cfg = cfg.model_copy(update={"schedule": "aesam", "signal_lag": 0})
    exact = loop.train(exact_cfg, out_dir=tmp_path / "exact")
    assert np.all(np.isfinite(exact.signals)) and exact.sa_steps == int(exact.draws.sum())
    np.testing.assert_array_equal(
        parse("aesam").replay(exact.signals, cfg.seed, lag=0), exact.draws
    )
    from rstsweep.trainers.summary import result_summary

    d = exact.draws.astype(int).tolist()  # 12 steps: thirds of 4
    by_third = [sum(d[:4]) / 4, sum(d[4:8]) / 4, sum(d[8:]) / 4]
    assert result_summary(exact)["sa_fraction_by_third"] == pytest.approx(by_third)

    crash_after_epoch(loop.train, cfg, tmp_path / "resumed")
    resumed = loop.train(cfg, out_dir=tmp_path / "resumed", resume=True)
    np.testing.assert_array_equal(resumed.draws, straight.draws)
    np.testing.assert_array_equal(resumed.signals, straight.signals)
    assert resumed.test_loss == straight.test_loss


def test_schedules_command_lists_the_policies_and_accepts_their_specs(cli):
    result = cli("schedules", "-T", "10", "--spec", "budget(0.3)")
    assert result.exit_code == 0, result.output
    assert "Closed-loop policies" in result.output
    for text in ("aesam", "l1 in [-5, 5] (default -1)", "Jiang et al., ICLR 2023", "d in [0, 1]"):
        assert text in result.output
    bad = cli("schedules", "--spec", "budget(3)")
    assert bad.exit_code != 0
