"""The one training loop every sweep cell runs: `train(config) -> TrainResult` (DESIGN §1, issue 3).

Per global step t (0 ≤ t < T = steps_per_epoch × epochs) the precomputed coin X_t (from
`rstsweep.schedules`, seeded by `config.seed`, independent of torch's RNG) chooses
- X_t = 0: a genuine one-pass base step (forward, backward, `optimizer.base_step()`);
- X_t = 1: the sharpness-aware step of `config.algorithm`: forward/backward at θ, `first_step`
  (θ → θ+ε), a second forward/backward at θ+ε with BatchNorm running statistics frozen
  (`disable_running_stats`: they come from the first pass only), `second_step` (back to θ, update);
  LookSAM's non-refresh steps take the one-pass `reuse_step()` (`needs_second_pass()` is False).
  ESAM's SDS lives here (the optimizer does SWP): after `first_step`, a no-grad forward at θ+ε
  ranks the samples by loss increase l(θ+ε) − l(θ), and the second forward/backward runs only on
  the ⌊γ·B⌋ (at least 1) samples with the largest increase, γ = `config.esam_gamma`.

Accounting: losses and correct counts are accumulated on the device and read once per epoch (no
per-step host-device sync); that read is also where divergence is detected (a non-finite epoch
loss stops the cell with status "diverged"). Step wall times are split by branch: CUDA events per
step (read at epoch end) on GPU, `perf_counter` on CPU; the means leave out each branch's first
step in a process (warm-up). `train_time_s` covers all training, not evaluation.

Checkpoints: with `out_dir`, an atomic `checkpoint.pt` is written at every epoch boundary (model,
optimizer incl. SAM state, lr scheduler, position, accounting, epoch records, RNG states) and
`resume=True` continues from it, ending bit-identical to an uninterrupted run (wall times aside):
the batches are a pure function of (seed, epoch) and the coins of (seed, T). A diverged epoch is
never checkpointed. GPU runs are as deterministic as cuDNN's default algorithms (benchmark off).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rstsweep.errors import RstError
from rstsweep.schedules import parse as parse_schedule
from rstsweep.trainers.checkpoint import (
    CHECKPOINT_NAME,
    FINAL_WEIGHTS_NAME,
    FORMAT_VERSION,
    atomic_torch_save,
    capture_rng_state,
    load_checkpoint,
    remove_stale_temporaries,
    restore_rng_state,
)
from rstsweep.trainers.config import CellConfig
from rstsweep.trainers.result import EpochRecord, TrainResult

EVAL_BATCH_SIZE = 1024


# --------------------------------------------------------------------------- runtime choices
@dataclass(frozen=True)
class Runtime:
    """Where and how a cell runs (never part of its identity)."""

    device: torch.device
    amp: bool
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)


def resolve_runtime(config: CellConfig) -> Runtime:
    """`device` auto → cuda if available else cpu; AMP (bf16) and channels_last on CUDA only."""
    name = config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise RstError(f"device: {name!r} is not a torch device ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RstError(f"device: {name!r} requested but CUDA is not available")
    on_cuda = device.type == "cuda"
    amp = on_cuda if config.amp is None else (config.amp and on_cuda)
    channels_last = on_cuda if config.channels_last is None else (config.channels_last and on_cuda)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    return Runtime(device=device, amp=amp, channels_last=channels_last)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU + CUDA), numpy's and python's global RNGs (the model init uses torch's)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


# --------------------------------------------------------------------------- accounting
@dataclass
class Accounting:
    """Running totals of one cell; saved in every checkpoint so a resumed run continues them.

    The first step of each branch in a process (one-time kernel selection, allocator growth,
    lazy CUDA init) is kept apart in `warmup_*`, so the mean step times compare the branches'
    steady-state costs; `train_time_s` includes everything."""

    steps: int = 0
    sa_steps: int = 0
    train_time_s: float = 0.0
    base_time_s: float = 0.0
    base_count: int = 0
    sa_time_s: float = 0.0
    sa_count: int = 0
    warmup_base_s: float = 0.0
    warmup_base_count: int = 0
    warmup_sa_s: float = 0.0
    warmup_sa_count: int = 0

    def mean_base_step(self) -> float | None:
        return _mean(self.base_time_s, self.base_count, self.warmup_base_s, self.warmup_base_count)

    def mean_sa_step(self) -> float | None:
        return _mean(self.sa_time_s, self.sa_count, self.warmup_sa_s, self.warmup_sa_count)

    def add_step_time(self, seconds: float, sa: bool, warmup: bool) -> None:
        if warmup and sa:
            self.warmup_sa_s += seconds
            self.warmup_sa_count += 1
        elif warmup:
            self.warmup_base_s += seconds
            self.warmup_base_count += 1
        elif sa:
            self.sa_time_s += seconds
            self.sa_count += 1
        else:
            self.base_time_s += seconds
            self.base_count += 1


def _mean(total: float, count: int, warm_total: float, warm_count: int) -> float | None:
    if count:
        return total / count
    return warm_total / warm_count if warm_count else None  # only warm-up steps: better than none


class StepTimer:
    """Per-step wall time split by branch without a per-step host-device sync.

    On CUDA each step records a pair of events, resolved at `flush()` (epoch end, after the sync
    that reads the epoch loss); on CPU work is synchronous, so `perf_counter` is exact and cheap.
    One timer lives as long as the cell in this process: it knows which branches are warmed up.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._pending: list[tuple[Any, Any, bool]] = []
        self._t0 = 0.0
        self._start: Any = None
        self._warm: set[bool] = set()  # branches (sa flag) whose first step this process has seen

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self, sa: bool, acc: Accounting) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pending.append((self._start, end, sa))
            return
        self._add(acc, time.perf_counter() - self._t0, sa)

    def flush(self, acc: Accounting) -> None:
        if not self._pending:
            return
        torch.cuda.synchronize()
        for start, end, sa in self._pending:
            self._add(acc, start.elapsed_time(end) / 1000.0, sa)
        self._pending.clear()

    def _add(self, acc: Accounting, seconds: float, sa: bool) -> None:
        acc.add_step_time(seconds, sa, warmup=sa not in self._warm)
        self._warm.add(sa)


# --------------------------------------------------------------------------- one step
@dataclass
class StepContext:
    """Everything a training step touches (built once per cell)."""

    model: nn.Module
    optimizer: Any  # a trainers.sam.SAM (or subclass)
    scheduler: Any
    runtime: Runtime
    label_smoothing: float
    esam_gamma: float | None  # set only for algorithm "esam": SDS in the second pass
    disable_running_stats: Callable[[nn.Module], contextlib.AbstractContextManager]
    loss_sum: Tensor = field(init=False)
    correct: Tensor = field(init=False)

    def reset_epoch_sums(self) -> None:
        self.loss_sum = torch.zeros((), device=self.runtime.device, dtype=torch.float32)
        self.correct = torch.zeros((), device=self.runtime.device, dtype=torch.int64)


def train_step(ctx: StepContext, x: Tensor, y: Tensor, sa: bool) -> None:
    """One RST step at the current θ: base (X_t = 0) or sharpness-aware (X_t = 1)."""
    model, opt = ctx.model, ctx.optimizer
    opt.zero_grad(set_to_none=True)
    sds = sa and ctx.esam_gamma is not None  # ESAM needs the per-sample losses at θ
    with ctx.runtime.autocast():
        out = model(x)
        losses = F.cross_entropy(
            out, y, label_smoothing=ctx.label_smoothing, reduction="none" if sds else "mean"
        )
        loss = losses.mean() if sds else losses
    loss.backward()
    if not sa:
        opt.base_step()
    elif sds:
        _esam_second_pass(ctx, x, y, losses.detach())
    elif opt.needs_second_pass():
        opt.first_step(zero_grad=True)
        # backward inside the block: BN's autograd node holds the running-stat buffers, which the
        # block restores in place on exit.
        with ctx.disable_running_stats(model):
            with ctx.runtime.autocast():
                second = F.cross_entropy(model(x), y, label_smoothing=ctx.label_smoothing)
            second.backward()
        opt.second_step(zero_grad=False)
    else:
        opt.reuse_step()
    ctx.scheduler.step()
    # Epoch sums stay on the device: read once per epoch (no .item() in the hot loop).
    ctx.loss_sum += loss.detach().float()
    ctx.correct += (out.detach().argmax(dim=1) == y).sum()


def _esam_second_pass(ctx: StepContext, x: Tensor, y: Tensor, loss_before: Tensor) -> None:
    """ESAM's SDS: rank samples by loss increase at θ+ε, back-propagate only the top γ-fraction."""
    model, opt = ctx.model, ctx.optimizer
    opt.first_step(zero_grad=True)
    k = max(1, int(ctx.esam_gamma * x.shape[0]))
    with ctx.disable_running_stats(model):
        if k < x.shape[0]:
            with torch.no_grad(), ctx.runtime.autocast():
                loss_after = F.cross_entropy(
                    model(x), y, label_smoothing=ctx.label_smoothing, reduction="none"
                )
            # topk on the device: the subset is chosen without a host sync.
            chosen = torch.topk(loss_after.float() - loss_before.float(), k, sorted=False).indices
            x, y = x[chosen], y[chosen]
        with ctx.runtime.autocast():
            second = F.cross_entropy(model(x), y, label_smoothing=ctx.label_smoothing)
        second.backward()
    opt.second_step(zero_grad=False)


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Iterator[tuple[Tensor, Tensor]], runtime: Runtime
) -> tuple[float, float]:
    """Mean cross-entropy (no smoothing) and error fraction over the test batches."""
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device, dtype=torch.float32)
    wrong = torch.zeros((), device=runtime.device, dtype=torch.int64)
    n = 0
    for x, y in batches:
        x = _to_memory_format(x, runtime)
        with runtime.autocast():
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        wrong += (out.argmax(dim=1) != y).sum()
        n += y.shape[0]
    model.train()
    if n == 0:
        return float("nan"), float("nan")
    return loss_sum.item() / n, wrong.item() / n


def _to_memory_format(x: Tensor, runtime: Runtime) -> Tensor:
    if runtime.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


# --------------------------------------------------------------------------- the cell
@dataclass
class Cell:
    """The built pieces of one run plus its progress (what a checkpoint captures)."""

    config: CellConfig
    runtime: Runtime
    data: Any
    ctx: StepContext
    steps_per_epoch: int
    total_steps: int
    draws: np.ndarray
    schedule: Any
    timer: StepTimer
    acc: Accounting = field(default_factory=Accounting)
    records: list[EpochRecord] = field(default_factory=list)
    epoch: int = 0  # completed epochs


def build_cell(config: CellConfig, data: Any = None) -> Cell:
    """Device, seeds, data, model, optimizer, lr schedule and the precomputed coin draws.
    `data` (a DataBundle already on the device) replaces `load_data` (benchmarks, tests)."""
    from rstsweep.trainers.augment import steps_per_epoch
    from rstsweep.trainers.data import load_data
    from rstsweep.trainers.models import build_model
    from rstsweep.trainers.optim import build_lr_scheduler, build_optimizer
    from rstsweep.trainers.sam import disable_running_stats

    runtime = resolve_runtime(config)
    seed_everything(config.seed)
    if data is None:
        data = load_data(
            config.dataset,
            data_dir=config.data_dir,
            device=runtime.device,
            train_subset=config.train_subset,
            test_subset=config.test_subset,
            seed=config.seed,
            label_noise=config.label_noise,
        )
    # Model init draws from torch's RNG seeded right here, so it does not depend on the data code.
    torch.manual_seed(config.seed)
    model = build_model(
        config.model,
        data.in_channels,
        data.num_classes,
        width=config.width,
        image_size=data.image_size,
    ).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    spe = steps_per_epoch(int(data.train_labels.shape[0]), config.batch_size)
    if spe < 1:
        raise RstError(
            f"batch_size: {config.batch_size} is larger than the training set "
            f"({int(data.train_labels.shape[0])} samples)"
        )
    optimizer = build_optimizer(model.parameters(), config)
    scheduler = build_lr_scheduler(optimizer, config, spe)
    schedule = parse_schedule(config.schedule)
    total = spe * config.epochs
    ctx = StepContext(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        runtime=runtime,
        label_smoothing=config.label_smoothing,
        esam_gamma=config.esam_gamma if config.algorithm == "esam" else None,
        disable_running_stats=disable_running_stats,
    )
    return Cell(
        config=config,
        runtime=runtime,
        data=data,
        ctx=ctx,
        steps_per_epoch=spe,
        total_steps=total,
        draws=np.asarray(schedule.draws(total, config.seed), dtype=bool),
        schedule=schedule,
        timer=StepTimer(runtime.device),
    )


def run_epoch(cell: Cell, on_step: Callable[[], None] | None = None) -> tuple[float, float]:
    """Train one epoch; returns (mean train loss, train error), read once at the end."""
    from rstsweep.trainers.augment import train_batches

    cfg, ctx, acc = cell.config, cell.ctx, cell.acc
    timer = cell.timer
    ctx.reset_epoch_sums()
    ctx.model.train()
    draws = cell.draws.tolist()  # python bools: no numpy scalar work per step
    first = cell.epoch * cell.steps_per_epoch
    t = first
    seen = 0
    begin = time.perf_counter()
    batches = train_batches(cell.data, cfg.batch_size, cfg.augment, cfg.seed, cell.epoch)
    for x, y in batches:
        if t - first >= cell.steps_per_epoch:
            raise RuntimeError("train_batches yielded more batches than steps_per_epoch")
        x = _to_memory_format(x, cell.runtime)
        sa = draws[t]
        timer.start()
        train_step(ctx, x, y, sa)
        timer.stop(sa, acc)
        seen += y.shape[0]
        t += 1
        if on_step is not None:
            on_step()
    steps = t - first
    loss_sum, correct = ctx.loss_sum.item(), ctx.correct.item()  # the one sync of the epoch
    acc.train_time_s += time.perf_counter() - begin
    timer.flush(acc)
    if steps != cell.steps_per_epoch:
        raise RuntimeError(
            f"train_batches yielded {steps} batches, expected {cell.steps_per_epoch}"
        )
    acc.steps += steps
    acc.sa_steps += int(cell.draws[first:t].sum())
    return loss_sum / steps, 1.0 - correct / seen


def current_lr(optimizer: Any) -> float:
    return float(optimizer.param_groups[0]["lr"])


# --------------------------------------------------------------------------- checkpoints
def checkpoint_state(cell: Cell) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "cell_id": cell.config.cell_id(),
        "total_steps": cell.total_steps,
        "epoch": cell.epoch,
        "model": cell.ctx.model.state_dict(),
        "optimizer": cell.ctx.optimizer.state_dict(),
        "scheduler": cell.ctx.scheduler.state_dict(),
        "accounting": dataclasses.asdict(cell.acc),
        "records": [dataclasses.asdict(r) for r in cell.records],
        "rng": capture_rng_state(),
    }


def restore_cell(cell: Cell, path: Path) -> None:
    """Load a checkpoint into a freshly built cell (same config) and continue from its epoch."""
    try:
        # On the CPU: load_state_dict moves every tensor to its parameter; RNG states stay on CPU.
        state = load_checkpoint(path, map_location="cpu")
    except Exception as exc:
        raise RstError(f"resume: cannot read checkpoint {path}: {exc}") from None
    if state.get("format") != FORMAT_VERSION:
        raise RstError(f"resume: {path} has checkpoint format {state.get('format')}")
    if state["cell_id"] != cell.config.cell_id() or state["total_steps"] != cell.total_steps:
        raise RstError(
            f"resume: {path} belongs to cell {state['cell_id']}, not {cell.config.cell_id()} "
            "(the config changed); use a new --out directory or drop --resume"
        )
    cell.ctx.model.load_state_dict(state["model"])
    cell.ctx.optimizer.load_state_dict(state["optimizer"])
    cell.ctx.scheduler.load_state_dict(state["scheduler"])
    cell.acc = Accounting(**state["accounting"])
    cell.records = [EpochRecord(**r) for r in state["records"]]
    cell.epoch = int(state["epoch"])
    restore_rng_state(state["rng"])


# --------------------------------------------------------------------------- the entry point
def train(
    config: CellConfig,
    out_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Run one cell. With `out_dir`, write `checkpoint.pt` at every epoch boundary and
    `final.pt` (the model's state_dict) at the end; `resume=True` continues from an existing
    checkpoint (and starts fresh when there is none). `on_epoch` gets each EpochRecord after its
    checkpoint is on disk. `progress` shows a rich progress bar (stderr) updated every step."""
    cell = build_cell(config)
    ckpt = None
    if out_dir is not None:
        ckpt = Path(out_dir) / CHECKPOINT_NAME
        remove_stale_temporaries(Path(out_dir))
        if resume and ckpt.exists():
            restore_cell(cell, ckpt)
    status, error = "ok", None
    with _progress_bar(progress, cell) as on_step:
        while cell.epoch < config.epochs:
            record, evaluated = _train_and_evaluate_epoch(cell, on_step)
            cell.records.append(record)
            cell.epoch += 1
            test_ok = math.isfinite(record.test_loss) or not evaluated
            if not (math.isfinite(record.train_loss) and test_ok):
                status = "diverged"
                error = (
                    f"diverged in epoch {record.epoch}: non-finite loss "
                    f"(train {record.train_loss}, test {record.test_loss})"
                )
            elif ckpt is not None:  # a diverged epoch is never checkpointed
                atomic_torch_save(checkpoint_state(cell), ckpt)
            if on_epoch is not None:
                on_epoch(record)
            if status != "ok":
                break
    if out_dir is not None:
        atomic_torch_save(cell.ctx.model.state_dict(), Path(out_dir) / FINAL_WEIGHTS_NAME)
    return _result(cell, status, error)


def _train_and_evaluate_epoch(
    cell: Cell, on_step: Callable[[], None] | None
) -> tuple[EpochRecord, bool]:
    """Train one epoch, then evaluate if this epoch is due (every `eval_every`-th and the last);
    an epoch not evaluated has NaN test metrics. Returns the record and whether it was evaluated."""
    from rstsweep.trainers.augment import test_batches

    lr = current_lr(cell.ctx.optimizer)  # the lr of the epoch's first step
    train_loss, train_error = run_epoch(cell, on_step)
    epoch = cell.epoch + 1
    due = epoch % cell.config.eval_every == 0 or epoch == cell.config.epochs
    if math.isfinite(train_loss) and due:
        test_loss, test_error = evaluate(
            cell.ctx.model, test_batches(cell.data, EVAL_BATCH_SIZE), cell.runtime
        )
    else:  # not due, or diverged (evaluating NaN weights tells nothing)
        test_loss, test_error = float("nan"), float("nan")
    record = EpochRecord(
        epoch=epoch,
        train_loss=train_loss,
        train_error=train_error,
        test_loss=test_loss,
        test_error=test_error,
        lr=lr,
        steps=cell.acc.steps,
        sa_steps=cell.acc.sa_steps,
        time_s=cell.acc.train_time_s,
    )
    return record, due


@contextlib.contextmanager
def _progress_bar(enabled: bool, cell: Cell) -> Iterator[Callable[[], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("SA {task.fields[sa]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    draws = cell.draws.tolist()
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        done = cell.epoch * cell.steps_per_epoch
        sa = int(cell.draws[:done].sum())
        task = bar.add_task(cell.config.cell_id(), total=cell.total_steps, completed=done, sa=sa)
        position = [done, sa]

        def on_step() -> None:
            # Cheap: a counter and rich's own rate-limited refresh thread; no device work.
            position[1] += draws[position[0]]
            position[0] += 1
            bar.update(task, completed=position[0], sa=position[1])

        yield on_step


def _result(cell: Cell, status: str, error: str | None) -> TrainResult:
    last = cell.records[-1] if cell.records else None
    nan = float("nan")
    return TrainResult(
        cell_id=cell.config.cell_id(),
        status=status,
        error=error,
        steps=cell.acc.steps,
        sa_steps=cell.acc.sa_steps,
        expected_extra=float(cell.schedule.expected_extra(cell.total_steps)),
        closed_form_extra=float(cell.schedule.closed_form_extra),
        train_time_s=cell.acc.train_time_s,
        sgd_step_s=cell.acc.mean_base_step(),
        sa_step_s=cell.acc.mean_sa_step(),
        train_loss=last.train_loss if last else nan,
        train_error=last.train_error if last else nan,
        test_loss=last.test_loss if last else nan,
        test_error=last.test_error if last else nan,
        epochs=list(cell.records),
        draws=cell.draws[: cell.acc.steps].copy(),
    )


# --------------------------------------------------------------------------- CLI helpers
def result_summary(result: TrainResult) -> dict[str, Any]:
    """The TrainResult's scalar fields plus realized Δη, JSON-safe (non-finite floats → None)."""
    summary = {
        f.name: getattr(result, f.name)
        for f in dataclasses.fields(result)
        if f.name not in ("epochs", "draws")
    }
    summary["realized_extra"] = result.realized_extra
    return {k: _json_safe(v) for k, v in summary.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_cli(options: dict[str, Any], out: Path | None, resume: bool, as_json: bool) -> int:
    """`rstsweep train`: build the config from the given options (None = CellConfig's default),
    train with a progress bar (unless `as_json`), print the summary; returns the exit code
    (0 ok, 1 diverged)."""
    import json
    import sys

    if resume and out is None:
        raise RstError("--resume: needs --out DIR (the directory holding checkpoint.pt)")
    config = CellConfig(**{k: v for k, v in options.items() if v is not None})
    result = train(config, out_dir=out, resume=resume, progress=not as_json)
    summary = result_summary(result)
    if as_json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, out)
    if result.status != "ok":
        print(f"rstsweep: {result.error}", file=sys.stderr)
        return 1
    return 0


def _print_summary(s: dict[str, Any], out: Path | None) -> None:
    def num(value: Any, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    lines = [
        f"cell {s['cell_id']}  status {s['status']}",
        f"steps {s['steps']}  SA steps {s['sa_steps']}"
        f"  realized Δη {num(s['realized_extra'], '.4f')}"
        f"  expected Δη {num(s['expected_extra'], '.4f')}"
        f"  closed form {num(s['closed_form_extra'], '.4f')}",
        f"test error {num(s['test_error'], '.4f')}  test loss {num(s['test_loss'], '.4f')}"
        f"  train error {num(s['train_error'], '.4f')}  train loss {num(s['train_loss'], '.4f')}",
        f"train time {num(s['train_time_s'], '.1f')} s  base step {num(s['sgd_step_s'], '.4f')} s"
        f"  SA step {num(s['sa_step_s'], '.4f')} s",
    ]
    if out is not None:
        lines.append(
            f"checkpoint {out / CHECKPOINT_NAME}  final weights {out / FINAL_WEIGHTS_NAME}"
        )
    print("\n".join(lines))
