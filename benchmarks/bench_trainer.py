"""Trainer speed, measured side by side in one run (issue 3): prints JSON, then one summary line.

1. SAM step / SGD step: the trainer's own `train_step` with X_t = 1 vs X_t = 0, same model and
   batches (goal ≤ 2.03; two passes make 2.0 the floor).
2. RST(p) extra time / (SGD time × realized Δη) for p ∈ {0.25, 0.5, 0.75}: T_p − T_0 over T_0·Δη
   for the same number of steps (goal 1.00 ± 0.03, the paper's Fig. 1B: extra cost is linear in Δη
   with SAM's slope). Also reported: `linearity` = (T_p − T_0) / ((T_1 − T_0)·Δη), which is 1 when
   the extra time is exactly proportional to the number of SA steps, whatever SAM's own ratio.
3. Trainer epoch / bare loop epoch: `run_epoch` of the trainer (algorithm sgd: accounting, timers,
   SAM wrapper's base_step, lr scheduler) vs a hand-written PyTorch loop doing the same math
   (torch.optim.SGD, clip_grad_norm_, per-step cosine LambdaLR) over the same on-device batches
   (goal ≤ 1.03).
4. Pass accounting: for LookSAM (k = 5) and ESAM (β = γ = 0.5), all steps sharpness-aware, the
   measured extra wall time over SGD's, (T_alg − T_sgd) / T_sgd, against the trainer's
   `realized_extra` (extra pass units counted by the cost model of `rstsweep.core.passes`); goal
   ratio 1.00 ± 0.05. And ESAM's first forward-backward (up to `first_step`, where its unchosen
   tensors skip their weight gradients) against SAM's, with the cost model's prediction.
   Steps run one configuration at a time in rotation; the measured extra is from each step
   kind's 10 %-trimmed mean time × its count (`measured_extra`; the plain means are reported
   beside it). The measured cost model: the step atoms of each configuration timed by the probe
   (`trainers.probe.AtomTimer`, on a fresh cell of the same setting, one batch; its rounds run
   between the rotation's steps, so prediction and measurement see the same machine) composed
   by `core.passes.sa_extra_time` into a predicted extra time, against the measured extra
   (`time_predicted_over_measured`, goal 1.00 ± 0.05), with the load average of the machine.
   A twin of the SGD cell (same seed and batches: the same arithmetic, its buffers elsewhere in
   memory) runs in the rotation too; its gap to SGD, over each algorithm's measured extra
   (`noise_floor`), is the resolution that algorithm's ratio can have on this machine.
5. Closed-loop policy epoch / open-loop epoch taking the same coins: `budget(0.5)` (first-pass
   ‖g‖² computed every step, copied to the host without blocking, read SIGNAL_LAG steps later,
   controller in Python) vs `constant(0.5)` replaying the coins the policy drew, so both run the
   same SA/base steps; alternating epochs (goal ≤ 1.03: the policy adds no sync and little work).

Parts 1 and 2 run all configurations (p = 0, 0.25, 0.5, 0.75, 1) interleaved in short blocks, and
part 3 alternates trainer and bare epochs, so load drift on a shared machine hits all alike.
Parts 1-2 time every step and report two estimates: `total` (the plain sums of the step times)
and `median` (per configuration, each branch's median step time × its step count: robust to the
hiccups of a shared machine, but it assumes the cost of a run is the sum of its steps' costs).
Data: random uint8 images of Fashion-MNIST's shape (1×28×28, default) or CIFAR's (3×32×32) on the
device; fastcnn; batch 128.

    .venv/bin/python benchmarks/bench_trainer.py [--shape cifar] [--threads 2] [--steps 120]
        [--only passes]
    .venv/bin/python benchmarks/bench_trainer.py --only policy   # part 5 alone
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from rstsweep.core.config import CellConfig
from rstsweep.schedules import parse
from rstsweep.trainers.augment import train_batches
from rstsweep.trainers.data import DataBundle
from rstsweep.trainers.loop import run_epoch
from rstsweep.trainers.models import build_model
from rstsweep.trainers.optim import lr_factor
from rstsweep.trainers.run import build_run
from rstsweep.trainers.step import train_step

SHAPES = {"fmnist": (1, 28), "cifar": (3, 32)}
PS = (0.0, 0.25, 0.5, 0.75, 1.0)


def random_bundle(shape: str, n_train: int, device: torch.device, seed: int = 0) -> DataBundle:
    channels, size = SHAPES[shape]
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(
        0, 256, (n_train, channels, size, size), dtype=torch.uint8, generator=gen
    )
    labels = torch.randint(0, 10, (n_train,), generator=gen)
    return DataBundle(
        name=f"random-{shape}",
        train_images=images.to(device),
        train_labels=labels.to(device),
        test_images=images[:256].to(device),
        test_labels=labels[:256].to(device),
        num_classes=10,
        mean=torch.full((channels,), 0.5, device=device),
        std=torch.full((channels,), 0.25, device=device),
    )


def config_for(args: argparse.Namespace, **overrides) -> CellConfig:
    base = dict(
        model="fastcnn",
        width=args.width,
        batch_size=args.batch_size,
        epochs=1,
        seed=0,
        device=args.device,
        threads=args.threads,
    )
    return CellConfig(**{**base, **overrides})


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_steps(args: argparse.Namespace, data: DataBundle) -> dict:
    """Parts 1 and 2: total time of `steps` trainer steps for every p, interleaved in blocks."""
    cells = {p: build_run(config_for(args, schedule=f"constant({p})"), data=data) for p in PS}
    device = cells[0.0].runtime.device
    batches = list(train_batches(data, args.batch_size, "basic", seed=0, epoch=0))[:16]
    steps, block = args.steps, args.block
    draws = {p: parse(f"constant({p})").draws(steps, seed=1).tolist() for p in PS}
    for cell in cells.values():  # warm-up: both branches, allocator, kernels
        cell.ctx.reset_epoch_sums()
        for i in range(args.warmup):
            x, y = batches[i % len(batches)]
            train_step(cell.ctx, x, y, sa=bool(i % 2))
    times: dict[float, list[float]] = {p: [] for p in PS}  # per step, in step order
    for start in range(0, steps, block):
        order = PS if (start // block) % 2 == 0 else PS[::-1]  # alternate to cancel drift
        for p in order:
            ctx = cells[p].ctx
            for t in range(start, min(start + block, steps)):
                x, y = batches[t % len(batches)]
                sync(device)
                t0 = time.perf_counter()
                train_step(ctx, x, y, draws[p][t])
                sync(device)
                times[p].append(time.perf_counter() - t0)
    return {
        "steps_per_config": steps,
        # wall time as it is: the sums over every step
        "total": _ratios({p: sum(times[p]) for p in PS}, draws, steps),
        # robust to a shared machine's hiccups: each branch's median step time times its count
        "median": _ratios(_median_totals(times, draws), draws, steps),
    }


def _median_totals(times: dict, draws: dict) -> dict[float, float]:
    totals = {}
    for p in PS:
        base = [s for s, sa in zip(times[p], draws[p], strict=True) if not sa]
        sa = [s for s, sa in zip(times[p], draws[p], strict=True) if sa]
        totals[p] = len(base) * (statistics.median(base) if base else 0.0) + len(sa) * (
            statistics.median(sa) if sa else 0.0
        )
    return totals


def _ratios(totals: dict[float, float], draws: dict, steps: int) -> dict:
    t_sgd, t_sam = totals[0.0], totals[1.0]
    rst = {}
    for p in PS[1:-1]:
        realized = sum(draws[p]) / steps
        extra = totals[p] - t_sgd
        rst[str(p)] = {
            "realized_extra": realized,
            "time_s": totals[p],
            "extra_over_sgd_x_deta": extra / (t_sgd * realized),
            "linearity": extra / ((t_sam - t_sgd) * realized),
        }
    return {
        "sgd_step_s": t_sgd / steps,
        "sam_step_s": t_sam / steps,
        "sam_over_sgd": t_sam / t_sgd,
        "rst": rst,
    }


def bare_epoch(model, opt, sched, data: DataBundle, args: argparse.Namespace, epoch: int) -> float:
    """A hand-written loop: same batches, SGD + global-norm clip 5 + per-step lr schedule."""
    begin = time.perf_counter()
    model.train()
    for x, y in train_batches(data, args.batch_size, "basic", 0, epoch):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
    sync(data.train_images.device)
    return time.perf_counter() - begin


def bench_epoch(args: argparse.Namespace, data: DataBundle) -> dict:
    """Part 3: the trainer's epoch (algorithm sgd) vs the bare loop, alternating."""
    reps = args.epoch_reps
    config = config_for(args, algorithm="sgd", epochs=reps + 1, grad_clip=5.0)
    cell = build_run(config, data=data)
    device = cell.runtime.device
    torch.manual_seed(0)
    model = build_model("fastcnn", data.in_channels, 10, width=args.width).to(device)
    opt = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    spe = cell.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config, spe))
    trainer_s, bare_s = [], []
    for epoch in range(reps + 1):  # epoch 0 is the warm-up of both
        begin = time.perf_counter()
        run_epoch(cell)
        cell.epoch += 1
        trainer = time.perf_counter() - begin
        bare = bare_epoch(model, opt, sched, data, args, epoch)
        if epoch:
            trainer_s.append(trainer)
            bare_s.append(bare)
    return {
        "steps_per_epoch": spe,
        "epochs": reps,
        "trainer_epoch_s": statistics.median(trainer_s),
        "bare_epoch_s": statistics.median(bare_s),
        "trainer_over_bare": sum(trainer_s) / sum(bare_s),
    }


PASS_CONFIGS = {
    "sgd": dict(algorithm="sgd"),
    "sam": dict(algorithm="sam", schedule="constant(1)"),
    "looksam": dict(algorithm="looksam", looksam_k=5, schedule="constant(1)"),
    "esam": dict(algorithm="esam", esam_beta=0.5, esam_gamma=0.5, schedule="constant(1)"),
    # SGD's twin: the same seed and batches, so the same arithmetic on the same numbers; only
    # where its buffers sit in memory differs. Its gap to "sgd" is the measurement's noise floor.
    "sgd_twin": dict(algorithm="sgd"),
}
SA_NAMES = tuple(name for name, kw in PASS_CONFIGS.items() if kw["algorithm"] != "sgd")


def bench_passes(args: argparse.Namespace, data: DataBundle) -> dict:
    """Part 4: measured extra time vs counted extra passes; first-pass time ESAM vs SAM."""
    cells = {k: build_run(config_for(args, **kw), data=data) for k, kw in PASS_CONFIGS.items()}
    device = cells["sgd"].runtime.device
    batches = list(train_batches(data, args.batch_size, "basic", seed=0, epoch=0))[:16]
    marks: dict[str, list[float]] = {k: [] for k in cells}
    clock = {"t0": 0.0}
    for name, cell in cells.items():
        cell.ctx.reset_epoch_sums()
        for i in range(args.warmup):
            train_step(cell.ctx, *batches[i % len(batches)], sa=name in SA_NAMES)

        def mark(name: str = name) -> None:  # the first pass ends here (synced: a benchmark)
            sync(device)
            marks[name].append(time.perf_counter() - clock["t0"])

        cell.ctx.optimizer.on_first_pass_end = mark
        cell.ctx.optimizer.take_extra_passes()  # count from here on
    realized = dict.fromkeys(cells, 0.0)
    timers = atom_timers(args, data)
    every = max(1, args.steps // args.atom_rounds)
    # one step of each configuration in turn (order rotated every round), each step timed and
    # labelled by its kind (a full two-pass step or a one-pass step: LookSAM's reuse steps), so
    # load drift hits every configuration alike at the scale of a single step; the probe's atom
    # rounds run between them, so the prediction sees the machine the measurement sees
    times: dict[str, list[tuple[bool, float]]] = {k: [] for k in cells}
    names = list(cells)
    for t in range(args.steps):
        if t % every == 0 and t // every < args.atom_rounds:
            _atom_round(timers, t // every)
        shift = t % len(names)
        for name in names[shift:] + names[:shift]:
            ctx = cells[name].ctx
            sync(device)
            clock["t0"] = time.perf_counter()
            train_step(ctx, *batches[t % len(batches)], sa=name in SA_NAMES)
            sync(device)
            elapsed = time.perf_counter() - clock["t0"]
            full = ctx.optimizer.take_extra_passes()
            times[name].append((full > 0.0, elapsed))
            realized[name] += full
    for r in range(-(-args.steps // every), args.atom_rounds):  # rounds the steps left over
        _atom_round(timers, r)
    robust = {k: _kind_totals(v) / args.steps for k, v in times.items()}
    plain = {k: sum(s for _, s in v) / args.steps for k, v in times.items()}
    out: dict = {"steps_per_config": args.steps, "step_s": robust, "step_s_plain_mean": plain}
    for name in SA_NAMES:
        measured = (robust[name] - robust["sgd"]) / robust["sgd"]
        out[name] = {
            "realized_extra": realized[name] / args.steps,
            "measured_extra": measured,
            "measured_extra_plain_mean": (plain[name] - plain["sgd"]) / plain["sgd"],
            "measured_over_realized": measured / (realized[name] / args.steps),
        }
    out["time_model"] = predicted_vs_measured(timers, out)
    out["noise_floor"] = noise_floor(robust)
    sam_first, esam_first = statistics.median(marks["sam"]), statistics.median(marks["esam"])
    out["first_pass"] = {
        "sam_s": sam_first,
        "esam_s": esam_first,
        "esam_over_sam": esam_first / sam_first,
        # the cost model: a pass is 1, skipping weight gradients of 1 − β of the entries saves
        # (1 − β)/3 in expectation
        "predicted": 1.0 - 0.5 / 3.0,
    }
    return out


def noise_floor(step_s: dict[str, float]) -> dict:
    """The gap between SGD and its twin (same arithmetic, other buffers), per step: as a share of
    SGD's step, and as a share of each algorithm's measured extra, the resolution its ratio has."""
    gap = step_s["sgd_twin"] - step_s["sgd"]
    return {
        "twin_minus_sgd_s": gap,
        "of_sgd_step": gap / step_s["sgd"],
        "of_measured_extra": {name: gap / (step_s[name] - step_s["sgd"]) for name in SA_NAMES},
    }


def _kind_totals(steps: list[tuple[bool, float]]) -> float:
    """Σ over step kinds of (count × 10 %-trimmed mean step time): the run's time, robust to a
    shared machine's hiccups, without assuming every step of a configuration costs the same."""
    total = 0.0
    for kind in (False, True):
        values = sorted(s for k, s in steps if k == kind)
        cut = len(values) // 10
        if values:
            total += len(values) * statistics.fmean(values[cut : len(values) - cut] or values)
    return total


def atom_timers(args: argparse.Namespace, data: DataBundle) -> dict:
    """The probe's atom timers (`trainers.probe.AtomTimer`) on fresh cells of each SA
    configuration, on one batch, warmed up; their rounds are timed by `bench_passes`."""
    from rstsweep.trainers.probe import AtomTimer

    x, y = next(iter(train_batches(data, args.batch_size, "basic", seed=0, epoch=0)))
    timers = {}
    for name in SA_NAMES:
        config = config_for(args, **PASS_CONFIGS[name])
        cell = build_run(config, data=data)
        cell.ctx.reset_epoch_sums()
        timers[name] = AtomTimer(cell.ctx, x, y, config)
        timers[name].warm_up(2)
    return timers


def _atom_round(timers: dict, r: int) -> None:
    """Round r of every atom timer, in alternating order."""
    for timer in timers.values() if r % 2 == 0 else list(timers.values())[::-1]:
        timer.time_round()


def predicted_vs_measured(timers: dict, measured: dict) -> dict:
    """The probe's atoms composed into the predicted extra time of an SA step
    (`core.passes.sa_extra_time`), against the measured extra of `bench_passes`."""
    import os

    from rstsweep.core.passes import sa_extra_time

    out: dict = {"load_average": os.getloadavg()[0]}
    for name, timer in timers.items():
        atoms = timer.atoms()
        predicted = sa_extra_time(timer.config, atoms)
        real = measured[name]["measured_extra"]
        out[name] = {
            "atoms": {k: v for k, v in vars(atoms).items() if v is not None},
            "time_predicted": predicted,
            "time_measured": real,
            "time_predicted_over_measured": predicted / real,
            "flops_model": measured[name]["realized_extra"],
        }
    return out


def bench_policy(args: argparse.Namespace, data: DataBundle) -> dict:
    """Part 5: a policy's epoch vs an open-loop epoch replaying the same coins, alternating.
    Wall time and process CPU time (the latter barely moved by other processes' load)."""
    reps = args.epoch_reps
    policy = build_run(config_for(args, schedule="budget(0.5)", epochs=reps + 1), data=data)
    fixed = build_run(config_for(args, schedule="constant(0.5)", epochs=reps + 1), data=data)
    spe = policy.steps_per_epoch
    wall: dict[str, list[float]] = {"policy": [], "fixed": []}
    cpu: dict[str, list[float]] = {"policy": [], "fixed": []}

    def timed(kind: str, cell, keep: bool) -> None:
        w, c = time.perf_counter(), time.process_time()
        run_epoch(cell)  # ends with the epoch's one host read, so the time is complete
        if keep:
            wall[kind].append(time.perf_counter() - w)
            cpu[kind].append(time.process_time() - c)

    for epoch in range(reps + 1):  # epoch 0 is the warm-up of both
        timed("policy", policy, epoch > 0)
        coins = fixed.draws.copy()
        coins[epoch * spe : (epoch + 1) * spe] = policy.draws[epoch * spe : (epoch + 1) * spe]
        fixed.coins.set_draws(coins)
        timed("fixed", fixed, epoch > 0)
        policy.epoch += 1
        fixed.epoch += 1
    steps = spe * reps
    return {
        **_policy_parts(policy, data, args),
        "policy": "budget(0.5)",
        "realized_extra": float(policy.draws[spe:].mean()),
        "policy_epoch_s": statistics.median(wall["policy"]),
        "open_loop_epoch_s": statistics.median(wall["fixed"]),
        "policy_over_open_loop": sum(wall["policy"]) / sum(wall["fixed"]),
        "cpu_policy_over_open_loop": sum(cpu["policy"]) / sum(cpu["fixed"]),
        "cpu_overhead_per_step_us": 1e6 * (sum(cpu["policy"]) - sum(cpu["fixed"])) / steps,
    }


def _policy_parts(cell, data: DataBundle, args: argparse.Namespace, n: int = 200) -> dict:
    """The policy's own per-step work, in CPU time: the [‖g‖², loss] signal on the model's
    gradients, and one decide + observe of the controller; a plain step for scale."""
    from rstsweep.trainers.step import first_pass_signal

    x, y = next(iter(train_batches(data, args.batch_size, "basic", seed=0, epoch=0)))
    train_step(cell.ctx, x, y, sa=False)  # leaves gradients to measure on
    loss = torch.ones(())
    start = time.process_time()
    for _ in range(n):
        first_pass_signal(cell.ctx.model, loss)
    signal_us = 1e6 * (time.process_time() - start) / n
    source = build_run(config_for(args, schedule="budget(0.5)", epochs=50), data=data).coins
    value = torch.tensor([1.0, 2.0])
    start = time.process_time()
    for t in range(n):
        source.decide(t)
        source.observe(t, value)
    decide_us = 1e6 * (time.process_time() - start) / n
    start = time.process_time()
    for _ in range(20):
        train_step(cell.ctx, x, y, sa=False)
    step_us = 1e6 * (time.process_time() - start) / 20
    return {"signal_us": signal_us, "decide_us": decide_us, "step_us": step_us}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="fmnist")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=120, help="steps per p in parts 1-2")
    parser.add_argument("--block", type=int, default=10, help="steps per interleaved block")
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--epoch-steps", type=int, default=40, help="steps per epoch, part 3")
    parser.add_argument("--epoch-reps", type=int, default=4)
    parser.add_argument("--only", choices=["passes", "policy"], help="run one part alone")
    parser.add_argument("--atom-rounds", type=int, default=30, help="probe rounds per atom")
    args = parser.parse_args(argv)

    probe = config_for(args)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if probe.device == "auto" else probe.device
    )
    torch.set_num_threads(args.threads)
    data = random_bundle(args.shape, args.epoch_steps * args.batch_size, device)
    started = time.perf_counter()
    if args.only == "passes":
        passes = bench_passes(args, data)
        print(
            json.dumps({"device": str(device), "threads": args.threads, "passes": passes}, indent=2)
        )
        print(_passes_line(passes) + f" | {device}, {args.threads} thread(s)")
    elif args.only == "policy":
        policy = bench_policy(args, data)
        print(json.dumps({"device": str(device), "threads": args.threads, "policy": policy}))
        print(
            f"policy/open-loop epoch {policy['policy_over_open_loop']:.3f} wall, "
            f"{policy['cpu_policy_over_open_loop']:.3f} CPU | per step: signal "
            f"{policy['signal_us']:.0f} µs + decision {policy['decide_us']:.0f} µs of a "
            f"{policy['step_us']:.0f} µs step | goal <= 1.03 | {device}, "
            f"{time.perf_counter() - started:.0f} s"
        )
    if args.only:
        return
    result = {
        "device": str(device),
        "threads": args.threads,
        "torch": torch.__version__,
        "shape": args.shape,
        "model": f"fastcnn(width={args.width})",
        "batch_size": args.batch_size,
        "steps": bench_steps(args, data),
        "epoch": bench_epoch(args, data),
        "passes": bench_passes(args, data),
        "policy": bench_policy(args, data),
    }
    result["wall_s"] = time.perf_counter() - started
    print(json.dumps(result, indent=2))
    epoch = result["epoch"]
    parts = []
    for kind in ("total", "median"):
        steps = result["steps"][kind]
        rst = " ".join(f"{v['extra_over_sgd_x_deta']:.3f}" for v in steps["rst"].values())
        parts.append(f"[{kind}] SAM/SGD {steps['sam_over_sgd']:.3f}, RST p=.25/.5/.75 {rst}")
    print(
        " | ".join(parts)
        + f" | trainer/bare epoch {epoch['trainer_over_bare']:.3f}"
        + f" | policy/open-loop epoch {result['policy']['policy_over_open_loop']:.3f}"
        + f" | goals <= 2.03, 1.00±0.03, <= 1.03, <= 1.03 | {_passes_line(result['passes'])}"
        + f" | {result['device']}, {args.threads} thread(s),"
        + f" {result['wall_s']:.0f} s"
    )
    finite = [
        v["linearity"] for k in ("total", "median") for v in result["steps"][k]["rst"].values()
    ]
    if not all(math.isfinite(v) for v in finite):
        sys.exit(1)


def _passes_line(p: dict) -> str:
    ratios = " ".join(
        f"{k} {v['measured_extra']:.3f}/{v['realized_extra']:.3f}={v['measured_over_realized']:.3f}"
        for k, v in ((k, p[k]) for k in SA_NAMES)
    )
    first = p["first_pass"]
    tm = p["time_model"]
    timed = " ".join(
        f"{k} {tm[k]['time_predicted']:.3f}/{tm[k]['time_measured']:.3f}="
        f"{tm[k]['time_predicted_over_measured']:.3f}"
        for k in SA_NAMES
    )
    floor = " ".join(f"{k} {v:+.3f}" for k, v in p["noise_floor"]["of_measured_extra"].items())
    return (
        f"time model predicted/measured extra: {timed} (goal 1.00±0.05; load average "
        f"{tm['load_average']:.1f}; SGD twin's gap over each extra: {floor})"
        f" | FLOP model, measured/realized extra: {ratios} (goal 1.00±0.05)"
        f" | ESAM/SAM first pass {first['esam_over_sam']:.3f} (model {first['predicted']:.3f})"
    )


if __name__ == "__main__":
    main()
