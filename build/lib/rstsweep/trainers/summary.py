"""`rstsweep train`'s side of a run: train a validated config with a progress bar, print the
result as a summary or as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from rstsweep.core.config import CellConfig
from rstsweep.core.names import CHECKPOINT_NAME, FINAL_WEIGHTS_NAME
from rstsweep.core.result import TrainResult
from rstsweep.trainers.loop import train


def result_summary(result: TrainResult) -> dict[str, Any]:
    """The TrainResult's scalar fields plus the coin fraction `sa_fraction` (ΣX_t/T) and
    `realized_extra` (extra pass units run per step), JSON-safe (non-finite floats → None)."""
    summary = {
        f.name: getattr(result, f.name)
        for f in dataclasses.fields(result)
        if f.name not in ("epochs", "draws", "signals")
    }
    summary["sa_fraction"] = result.sa_fraction
    summary["realized_extra"] = result.realized_extra
    return {k: _json_safe(v) for k, v in summary.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_cli(config: CellConfig, out: Path | None, resume: bool, as_json: bool) -> int:
    """`rstsweep train` on a validated config: train with a progress bar (unless `as_json`), print
    the summary; returns the exit code (0 ok, 1 diverged)."""
    if config.world_size > 1:  # data-parallel: this process is rank 0 of world_size
        from rstsweep.trainers.distributed import train_distributed

        result = train_distributed(config, out_dir=out, resume=resume, progress=not as_json)
    else:
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
        f"  SA fraction {num(s['sa_fraction'], '.4f')}"
        f"  realized Δη {num(s['realized_extra'], '.4f')} (extra passes run)"
        f"  expected Δη {num(s['expected_extra'], '.4f')}"
        f"  closed form {num(s['closed_form_extra'], '.4f')}",
        f"test error {num(s['test_error'], '.4f')}  test loss {num(s['test_loss'], '.4f')}"
        f"  train error {num(s['train_error'], '.4f')}  train loss {num(s['train_loss'], '.4f')}",
        f"train time {num(s['train_time_s'], '.1f')} s  base step {num(s['sgd_step_s'], '.4f')} s"
        f"  SA step {num(s['sa_step_s'], '.4f')} s"
        f"  SA first pass {num(s['first_pass_s'], '.4f')} s",
    ]
    manifest = s.get("manifest") or {}
    peak = s.get("peak_memory_bytes")
    lines.append(
        f"precision {manifest.get('precision', 'n/a')}  skipped steps {s.get('skipped_steps', 0)}"
        f"  compiled {manifest.get('compiled', False)}"
        f"  peak memory {'n/a' if peak is None else f'{peak / 2**20:.0f} MiB'}"
    )
    if out is not None:
        lines.append(
            f"checkpoint {out / CHECKPOINT_NAME}  final weights {out / FINAL_WEIGHTS_NAME}"
        )
    print("\n".join(lines))
