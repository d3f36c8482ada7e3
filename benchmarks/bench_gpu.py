"""GPU throughput of the trainer's steps: one prepared script, at most ~8 minutes on one GPU.

For ResNet-18 and WRN-28-10 at CIFAR shape (3×32×32, 10 classes), batch 256, synthetic data on the
device, with the trainer's own `train_step` (SAM over SGD with momentum 0.9, Nesterov, weight decay
5e-4, gradient clipping 5, as a default cell), it measures:
  * images/s of SGD (base) and SAM steps in four settings: eager fp32, eager bf16, eager bf16 +
    channels_last, compiled (torch.compile, inductor) bf16 + channels_last; peak memory of each;
  * the SAM/SGD step ratio, and compiled / eager (both bf16 + channels_last);
  * RST(0.5) in eager bf16 + channels_last (the trainer's CUDA default): extra time over SGD
    divided by SGD time × realized Δη, and the same divided by SAM's extra time ("linearity":
    1.0 when an RST run costs SGD + Δη × SAM's extra);
  * aggregate throughput of 1, 2 and 4 trials packed on the GPU as separate processes (eager bf16
    + channels_last SGD steps, each capped at its 1/k share of memory as `rstsweep run` does).
Timing: warm-up steps first, then each block of steps between two `torch.cuda.synchronize()`
(`rstsweep.trainers.probe.time_branches`; no sync inside a block). A time budget (`--budget-s`)
skips what is left, saying so in the JSON, so the script ends inside its slot.

`--tiny` runs the same measurements in seconds on the CPU (tiny widths, 8×8 images, batch 8,
compiled settings skipped unless `--compile-backend` is given, e.g. aot_eager): what CI runs.
Prints one JSON object, then one summary line. Imports only torch and the torch-only trainer
modules (no pydantic, numpy or ray), so it runs on a bare `pip install torch` machine:
    PYTHONPATH=src python3 benchmarks/bench_gpu.py [--out bench_gpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rstsweep.trainers.compiled import EAGER, compiled_passes
from rstsweep.trainers.memory import apply_memory_fraction, device_memory_bytes
from rstsweep.trainers.models import build_model
from rstsweep.trainers.probe import synchronize, time_branches
from rstsweep.trainers.runtime import Runtime
from rstsweep.trainers.sam import SAM, disable_running_stats
from rstsweep.trainers.step import StepContext, train_step

# name -> (compiled, precision, channels_last)
SETTINGS = {
    "eager-fp32": (False, "fp32", False),
    "eager-bf16": (False, "bf16", False),
    "eager-bf16-cl": (False, "bf16", True),
    "compiled-bf16-cl": (True, "bf16", True),
}
FULL = {"models": {"resnet18": None, "wrn-28-10": None}, "batch": 256, "side": 32}
TINY = {"models": {"resnet18": 2, "wrn-10-1": None}, "batch": 8, "side": 8}
COMPILE_RESERVE_S = 150.0  # budget a compiled setting may need (inductor compiles two graphs)
PACK_RESERVE_S = 45.0  # budget a round of packed workers may need (process start, CUDA init)
GOALS = {  # the goals on an H100/H200-class GPU
    "resnet18_sgd_bf16_img_s": 25_000.0,
    "sam_over_sgd_max": 2.03,
    "compiled_over_eager_min": 1.3,
    "packed4_over_1_min": 1.5,
}


def make_ctx(model_name: str, width: int | None, setting: str, args: argparse.Namespace):
    """A StepContext like a default cell's, plus one synthetic batch on the device."""
    compiled, precision, channels_last = SETTINGS[setting]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(model_name, 3, 10, width=width, image_size=args.side).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = SAM(
        model.parameters(), torch.optim.SGD, rho=0.05, max_grad_norm=5.0,
        lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
    )  # fmt: skip
    backend = args.compile_backend or "inductor"
    ctx = StepContext(
        model=model,
        optimizer=opt,
        scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
        runtime=Runtime(device=device, precision=precision, channels_last=channels_last),
        label_smoothing=0.0,
        disable_running_stats=disable_running_stats,
        passes=compiled_passes(backend=backend) if compiled else EAGER,
    )
    ctx.reset_epoch_sums()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, args.side, args.side, generator=gen).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(device)
    return ctx, x, y


def measure_setting(model_name: str, width: int | None, setting: str, args) -> dict[str, Any]:
    ctx, x, y = make_ctx(model_name, width, setting, args)
    begin = time.perf_counter()
    out = time_branches(
        lambda sa: train_step(ctx, x, y, sa), ctx.runtime.device, args.steps, args.warmup
    )
    sgd, sam = out["sgd_step_s"], out["sa_step_s"]
    result = {
        "sgd_img_s": args.batch / sgd,
        "sam_img_s": args.batch / sam,
        "sgd_step_s": sgd,
        "sam_step_s": sam,
        "sam_over_sgd": sam / sgd,
        "peak_memory_bytes": out["peak_memory_bytes"],
        "wall_s": time.perf_counter() - begin,  # compile and warm-up included
    }
    if setting == args.rst_setting:
        result["rst"] = measure_rst(ctx, x, y, sgd, sam, args)
    return result


def measure_rst(ctx, x, y, sgd_step_s: float, sam_step_s: float, args) -> dict[str, Any]:
    """RST(p=0.5): 2×steps steps with seeded coins, timed as one block (branches warmed up)."""
    n = 2 * args.steps
    gen = torch.Generator().manual_seed(2)
    coins = (torch.rand(n, generator=gen) < 0.5).tolist()
    synchronize(ctx.runtime.device)
    begin = time.perf_counter()
    for sa in coins:
        train_step(ctx, x, y, sa)
    synchronize(ctx.runtime.device)
    total = time.perf_counter() - begin
    realized = sum(coins) / n
    t_sgd = n * sgd_step_s
    extra = total - t_sgd
    sam_extra = (sam_step_s - sgd_step_s) * n * realized
    return {
        "p": 0.5,
        "steps": n,
        "realized_extra": realized,
        "time_s": total,
        "extra_over_sgd_x_deta": extra / (t_sgd * realized) if realized else None,
        "linearity": extra / sam_extra if sam_extra > 0 else None,
    }


def bench_model(name: str, args: argparse.Namespace, deadline: float, skipped: list[str]) -> dict:
    """Every setting of one model (a compiled setting needs COMPILE_RESERVE_S of the budget)."""
    width = args.models[name]
    settings: dict[str, Any] = {}
    for setting, (compiled, _, _) in SETTINGS.items():
        if compiled and args.tiny and not args.compile_backend:
            settings[setting] = {"skipped": "compiled: not in --tiny without --compile-backend"}
            continue
        if time.time() + (COMPILE_RESERVE_S if compiled else 0.0) > deadline:
            settings[setting] = {"skipped": "time budget"}
            skipped.append(f"{name}/{setting}")
            continue
        try:
            settings[setting] = measure_setting(name, width, setting, args)
        except Exception as exc:  # a failing setting (a compile error) must not lose the rest
            settings[setting] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        if compiled:
            torch._dynamo.reset()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # leave the memory to the next setting and packed workers
    eager, compiled_ = settings["eager-bf16-cl"], settings["compiled-bf16-cl"]
    speedup = None
    if "sgd_img_s" in eager and "sgd_img_s" in compiled_:
        speedup = compiled_["sgd_img_s"] / eager["sgd_img_s"]
    return {"width": width, "settings": settings, "compiled_over_eager": speedup}


# ----------------------------------------------------------------------------- packed trials
def worker(args: argparse.Namespace) -> None:
    """One packed trial: warm up, say ready, wait for go, time SGD steps, print a JSON line."""
    name, width = next(iter(args.models.items()))
    apply_memory_fraction(args.memory_fraction, torch.device(args.device))
    ctx, x, y = make_ctx(name, width, "eager-bf16-cl", args)
    for _ in range(args.warmup):
        train_step(ctx, x, y, False)
    synchronize(ctx.runtime.device)
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    start = time.time()
    for _ in range(args.steps):
        train_step(ctx, x, y, False)
    synchronize(ctx.runtime.device)
    end = time.time()
    print(json.dumps({"start": start, "end": end, "images": args.steps * args.batch}), flush=True)


def bench_packed(args: argparse.Namespace, deadline: float, skipped: list[str]) -> dict:
    """k concurrent worker processes for k in args.packs; aggregate images/s over the wall time
    from the first start to the last end."""
    model = next(iter(args.models))
    out: dict[str, Any] = {"model": model, "setting": "eager-bf16-cl", "trials": {}}
    for k in args.packs:
        if time.time() + PACK_RESERVE_S > deadline:
            out["trials"][str(k)] = {"skipped": "time budget"}
            skipped.append(f"packed/{k}")
            continue
        try:
            out["trials"][str(k)] = run_pack(k, args)
        except Exception as exc:
            out["trials"][str(k)] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    one, four = out["trials"].get("1", {}), out["trials"].get("4", {})
    out["packed4_over_1"] = (
        four["aggregate_img_s"] / one["aggregate_img_s"]
        if "aggregate_img_s" in one and "aggregate_img_s" in four
        else None
    )
    return out


def run_pack(k: int, args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "--device", args.device]
    argv += ["--steps", str(args.steps * 2), "--warmup", str(args.warmup)]
    argv += ["--memory-fraction", str(1.0 / k)] + (["--tiny"] if args.tiny else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_src(), _pythonpath()]))}
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(k)
    ]
    try:
        for proc in procs:  # every worker warmed up before any starts timing
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"packed worker did not start: {line!r}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = [json.loads(proc.stdout.readline()) for proc in procs]
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    finally:
        for proc in procs:
            proc.wait(timeout=600)
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    per = [r["images"] / (r["end"] - r["start"]) for r in reports]
    return {
        "aggregate_img_s": sum(r["images"] for r in reports) / wall,
        "per_trial_img_s": per,
        "memory_fraction": 1.0 / k,
    }


def _src() -> str:
    return str(Path(__file__).resolve().parents[1] / "src")


def _pythonpath() -> str:
    return os.environ.get("PYTHONPATH", "")


# ----------------------------------------------------------------------------- report
def device_info(device: torch.device) -> dict[str, Any]:
    cuda = device.type == "cuda"
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor(),
        "device_memory_bytes": device_memory_bytes(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python": platform.python_version(),
    }


def goals(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals with the measured values (met: None when not measured, or --tiny)."""
    r18 = report["models"].get("resnet18", {})
    settings = r18.get("settings", {})
    bf16 = [s["sgd_img_s"] for k, s in settings.items() if "bf16" in k and "sgd_img_s" in s]
    ratios = [s["sam_over_sgd"] for s in settings.values() if "sam_over_sgd" in s]
    values = {
        "resnet18_sgd_bf16_img_s": max(bf16, default=None),
        "sam_over_sgd_max": max(ratios, default=None),
        "compiled_over_eager_min": r18.get("compiled_over_eager"),
        "packed4_over_1_min": report.get("packing", {}).get("packed4_over_1"),
    }
    out = {}
    for key, value in values.items():
        target = GOALS[key]
        met = None
        if value is not None and not report["tiny"]:
            met = value <= target if key.endswith("_max") else value >= target
        out[key] = {"goal": target, "value": value, "met": met}
    return out


def summary_line(report: dict[str, Any]) -> str:
    parts = [f"bench_gpu on {report['device']['device_name'] or report['device']['device']}"]
    for name, model in report["models"].items():
        cl = model["settings"].get("eager-bf16-cl", {})
        if "sgd_img_s" not in cl:
            continue
        text = f"{name}: SGD bf16+cl {cl['sgd_img_s']:,.0f} img/s, SAM/SGD {cl['sam_over_sgd']:.2f}"
        if model["compiled_over_eager"]:
            text += f", compiled {model['compiled_over_eager']:.2f}x"
        parts.append(text)
    packed = report.get("packing", {}).get("packed4_over_1")
    if packed:
        parts.append(f"4 packed / 1: {packed:.2f}x")
    parts.append(f"{report['elapsed_s']:.0f} s" + (" (tiny)" if report["tiny"] else ""))
    return " | ".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny CPU version (seconds; for CI)")
    p.add_argument("--device", default=None, help="default: cuda if available (cpu with --tiny)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per branch")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per branch")
    p.add_argument("--budget-s", type=float, default=420.0, help="skip what is left after this")
    p.add_argument("--only", default=None, help="one model of the two, e.g. resnet18")
    p.add_argument("--packs", default="1,2,4", help="packed trial counts, e.g. 1,2,4 ('' none)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (inductor)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--memory-fraction", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shape = TINY if args.tiny else FULL
    args.models, args.batch, args.side = dict(shape["models"]), shape["batch"], shape["side"]
    if args.only is not None:
        if args.only not in args.models:
            p.error(f"--only: {args.only!r} is not one of {', '.join(args.models)}")
        args.models = {args.only: args.models[args.only]}
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    args.steps = args.steps or (3 if args.tiny else 30)
    args.warmup = args.warmup or (1 if args.tiny else 5)
    args.packs = [int(k) for k in args.packs.split(",") if k.strip()]
    args.rst_setting = "eager-bf16-cl"  # the trainer's CUDA default (bf16, channels_last)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    if args.tiny:
        torch.set_num_threads(1)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    begin = time.time()
    deadline = begin + args.budget_s
    skipped: list[str] = []
    report: dict[str, Any] = {
        "tiny": args.tiny,
        "device": device_info(torch.device(args.device)),
        "batch_size": args.batch,
        "image_side": args.side,
        "steps": args.steps,
        "warmup": args.warmup,
        "rst_setting": args.rst_setting,
    }
    # ResNet-18 first, then its packed trials: the goals are about it; WRN-28-10 last
    names = list(args.models)
    report["models"] = {names[0]: bench_model(names[0], args, deadline, skipped)}
    report["packing"] = bench_packed(args, deadline, skipped)
    for name in names[1:]:
        report["models"][name] = bench_model(name, args, deadline, skipped)
    report["elapsed_s"] = time.time() - begin
    report["skipped"] = skipped
    report["goals"] = goals(report)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    print(summary_line(report))
    return report


if __name__ == "__main__":
    main()
