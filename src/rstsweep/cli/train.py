"""`rstsweep schedules`, `train` and `fields`: one cell, what can be set in it, and the printed
summary of a trained cell. Heavy modules (torch) are imported inside the commands, so `--help`
starts fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rstsweep.cli.app import SetOption, app, opt
from rstsweep.core.algorithms import algorithm_names
from rstsweep.core.catalog import DATASETS, MODEL_NAMES
from rstsweep.core.names import CHECKPOINT_NAME, FINAL_WEIGHTS_NAME
from rstsweep.errors import RstError

if TYPE_CHECKING:  # pydantic is not imported for `--help`
    from rstsweep.core.config import CellConfig


@app.command()
def schedules(
    steps: Annotated[
        int, typer.Option("--steps", "-T", min=1, help="T for the discrete Δη.")
    ] = 1000,
    spec: Annotated[
        list[str] | None, typer.Option("--spec", help="Extra schedule specs to list.")
    ] = None,
) -> None:
    """Print the scheduling functions (the paper's Table 2) with closed-form and discrete Δη."""
    from rstsweep.schedules.listing import print_schedule_table

    print_schedule_table(steps=steps, extra_specs=spec or [])


@app.command("train")
def train_cmd(
    algorithm: Annotated[str | None, opt(f"The SA branch: {', '.join(algorithm_names())}.")] = None,
    schedule: Annotated[str | None, opt("p(t), e.g. 'constant(0.5)', 'cos1'.")] = None,
    model: Annotated[str | None, opt(f"{', '.join(MODEL_NAMES)} or a plugin's.")] = None,
    dataset: Annotated[str | None, opt(f"{', '.join(DATASETS)} or a plugin's.")] = None,
    epochs: Annotated[int | None, opt("Training epochs.")] = None,
    seed: Annotated[int | None, opt("Seed of the model init, data order and coins.")] = None,
    data_dir: Annotated[str | None, opt("Dataset directory.")] = None,
    device: Annotated[str | None, opt("auto, cpu, cuda, cuda:1 ...")] = None,
    world_size: Annotated[int | None, opt("Data-parallel processes (gloo on CPU).")] = None,
    precision: Annotated[str | None, opt("auto (bf16 on CUDA), fp32, bf16, fp16.")] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the base and SA passes.")
    ] = False,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic algorithms (bit-identical GPU).")
    ] = False,
    set_: SetOption = None,
    out: Annotated[Path | None, opt("Directory for checkpoint.pt and final.pt.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON summary only.")] = False,
) -> None:
    """Train one cell (one RST run) and print its summary.

    The flags set the common fields; --set KEY=VALUE sets any field of
    the cell config; `rstsweep fields` lists them all with type, range,
    default and description. Unset fields keep their defaults.
    """
    from rstsweep.core.fields import make_config, parse_assignments

    flags = {"algorithm": algorithm, "schedule": schedule, "model": model, "dataset": dataset,
             "epochs": epochs, "seed": seed, "data_dir": data_dir, "device": device,
             "world_size": world_size, "precision": precision,
             # switches: only an explicit flag overrides the config default
             "compile": compile_ or None, "deterministic": deterministic or None}  # fmt: skip
    given = {k: v for k, v in flags.items() if v is not None}
    sets = parse_assignments(set_ or [])
    clash = sorted(given.keys() & sets.keys())
    if clash:
        raise RstError(f"--set {clash[0]}: also given as --{clash[0].replace('_', '-')}")
    where = {k: f"--{k.replace('_', '-')}" for k in given} | {k: f"--set {k}" for k in sets}
    config = make_config(given | sets, where)  # validated before torch is imported
    if resume and out is None:
        raise RstError("--resume: needs --out DIR (the directory holding checkpoint.pt)")

    code = train_and_print(config, out=out, resume=resume, as_json=json_)
    if code:
        sys.exit(code)


@app.command("fields")
def fields_cmd(
    models: Annotated[
        bool,
        typer.Option(
            "--models", help="Instead: which network each model builds for each data set."
        ),
    ] = False,
) -> None:
    """List every cell-config field (type, range, default, description) for `--set KEY=VALUE`."""
    from rstsweep.core.fields import fields_text, variants_text

    print(variants_text() if models else fields_text())


def train_and_print(config: CellConfig, out: Path | None, resume: bool, as_json: bool) -> int:
    """`rstsweep train` on a validated config: train with a progress bar (unless `as_json`), print
    the summary; returns the exit code (0 ok, 1 diverged)."""
    from rstsweep.trainers.summary import result_summary

    if config.world_size > 1:  # data-parallel: this process is rank 0 of world_size
        from rstsweep.trainers.distributed import train_distributed

        result = train_distributed(config, out_dir=out, resume=resume, progress=not as_json)
    else:
        from rstsweep.trainers.loop import train

        result = train(config, out_dir=out, resume=resume, progress=not as_json)
    summary = result_summary(result)
    if as_json:
        print(json.dumps(summary))
    else:
        print_summary(summary, out)
    if result.status != "ok":
        print(f"rstsweep: {result.error}", file=sys.stderr)
        return 1
    return 0


def print_summary(s: dict[str, object], out: Path | None) -> None:
    """Print a `result_summary` as the lines of `rstsweep train`."""

    def num(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    lines = [
        f"cell {s['cell_id']}  status {s['status']}",
        f"steps {s['steps']}  SA steps {s['sa_steps']}"
        f"  SA fraction {num(s['sa_fraction'], '.4f')}"
        f"  realized Δη {num(s['realized_extra'], '.4f')} (extra passes run)"
        f"  expected Δη {num(s['expected_extra'], '.4f')}"
        f"  closed form {num(s['closed_form_extra'], '.4f')}",
        "SA fraction by third of the steps "
        + " / ".join(num(v, ".3f") for v in s["sa_fraction_by_third"]),
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
