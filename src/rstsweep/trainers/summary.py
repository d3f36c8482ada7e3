"""`rstsweep train`'s side of a run: build the config, train with a progress bar, print the result
as a summary or as JSON."""

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
from rstsweep.errors import RstError
from rstsweep.trainers.loop import train


def result_summary(result: TrainResult) -> dict[str, Any]:
    """The TrainResult's scalar fields plus realized Δη, JSON-safe (non-finite floats → None)."""
    summary = {
        f.name: getattr(result, f.name)
        for f in dataclasses.fields(result)
        if f.name not in ("epochs", "draws", "signals")
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
