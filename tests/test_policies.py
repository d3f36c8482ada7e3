"""Closed-loop step policies (`rstsweep.schedules.policies`, `rstsweep.trainers.draws`): the AE-SAM
rule against a hand-computed sequence, common random numbers, the budget controller's tracking,
specs, the trainer's draw source, resume, and the store's signal column."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rstsweep.core.config import CellConfig
from rstsweep.schedules import SALT, SIGNAL_LAG, Policy, ScheduleError, parse
from rstsweep.store.rows import draws_row, pack_signal, unpack_signal
from rstsweep.trainers.draws import PolicyDraws

# ‖g_t‖² of 8 steps; by hand with δ = 0.5, c_t = −1 + 2t/8, lag 2 (μ, σ² from 0):
#   t=0,1 no signal yet                                  -> SAM
#   t=2 sees 4:   σ²=¼·16=4,          μ=2,   c=−½, bound 2−½·2=1        4 ≥ 1     -> 1
#   t=3 sees 2:   σ²=½·4+¼·0=2,       μ=2,   c=−¼, bound 2−¼·√2=1.646   2 ≥ 1.646 -> 1
#   t=4 sees 8:   σ²=1+¼·36=10,       μ=5,   c=0,  bound 5              8 ≥ 5     -> 1
#   t=5 sees 1:   σ²=5+¼·16=9,        μ=3,   c=¼,  bound 3+¼·3=3.75     1 < 3.75  -> 0
#   t=6 sees 4.6: σ²=4.5+¼·1.6²=5.14, μ=3.8, c=½,  bound 3.8+½·2.267=4.93  4.6 <  -> 0
#   t=7 sees 10:  σ²=2.57+¼·6.2²=12.18, μ=6.9, c=¾, bound 6.9+¾·3.49=9.52 10 ≥    -> 1
SIGNALS = [4.0, 2.0, 8.0, 1.0, 4.6, 10.0, 0.0, 0.0]
AESAM_BY_HAND = [1, 1, 1, 1, 1, 0, 0, 1]
AESAM_SPEC = "aesam(l1=-1, l2=1, delta=0.5)"


def test_aesam_rule_matches_the_hand_computed_sequence():
    assert SIGNAL_LAG == 2  # the table above assumes it
    draws = parse(AESAM_SPEC).replay(SIGNALS, seed=0)
    assert draws.astype(int).tolist() == AESAM_BY_HAND
    # threshold rule: p_t ∈ {0, 1}, so the seed cannot matter
    assert np.array_equal(parse(AESAM_SPEC).replay(SIGNALS, seed=7), draws)
    # c matters: with c ≡ 0 step 6 (4.6 ≥ μ = 3.8) becomes a SAM step
    flat = parse("aesam(l1=0, l2=0, delta=0.5)").replay(SIGNALS, seed=0)
    assert flat.astype(int).tolist() == [1, 1, 1, 1, 1, 0, 1, 1]


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
    assert [restored.decide(t) for t in (5, 6, 7)] == [False, False, True]


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

    cfg = CellConfig(
        model="fastcnn",
        width=4,
        train_subset=192,
        test_subset=64,
        batch_size=32,
        epochs=2,
        seed=5,
        lr=0.05,
        threads=1,
        device="cpu",
        schedule="budget(0.5)",
    )
    straight = loop.train(cfg, out_dir=tmp_path / "straight")
    assert straight.signals is not None and straight.signals.size == straight.steps == 12
    assert np.all(np.isfinite(straight.signals)) and np.all(straight.signals > 0)
    np.testing.assert_array_equal(
        parse(cfg.schedule).replay(straight.signals, cfg.seed), straight.draws
    )

    class Crash(Exception):
        pass

    def crash(record):
        if record.epoch == 1:
            raise Crash

    with pytest.raises(Crash):
        loop.train(cfg, out_dir=tmp_path / "resumed", on_epoch=crash)
    resumed = loop.train(cfg, out_dir=tmp_path / "resumed", resume=True)
    np.testing.assert_array_equal(resumed.draws, straight.draws)
    np.testing.assert_array_equal(resumed.signals, straight.signals)
    assert resumed.test_loss == straight.test_loss


def test_schedules_command_lists_the_policies_and_accepts_their_specs():
    from typer.testing import CliRunner

    from rstsweep.cli import app

    result = CliRunner().invoke(app, ["schedules", "-T", "10", "--spec", "budget(0.3)"])
    assert result.exit_code == 0, result.output
    assert "Closed-loop policies" in result.output
    for text in ("aesam", "l1 in [-5, 5] (default -1)", "Jiang et al., ICLR 2023", "d in [0, 1]"):
        assert text in result.output
    bad = CliRunner().invoke(app, ["schedules", "--spec", "budget(3)"])
    assert bad.exit_code != 0
