"""`rstsweep schedules`, `train` and `fields`: one cell, and what can be set in it. Heavy modules
(torch) are imported inside the commands, so `--help` starts fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli_app import (
    SetOption,
    _opt,
    app,
)
from rstsweep.core.algorithms import algorithm_names
from rstsweep.core.catalog import DATASETS, MODEL_NAMES
from rstsweep.errors import RstError


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
    from rstsweep.schedules.table import print_schedule_table

    print_schedule_table(steps=steps, extra_specs=spec or [])


@app.command("train")
def train_cmd(
    algorithm: Annotated[
        str | None, _opt(f"The SA branch: {', '.join(algorithm_names())}.")
    ] = None,
    schedule: Annotated[str | None, _opt("p(t), e.g. 'constant(0.5)', 'cos1'.")] = None,
    model: Annotated[str | None, _opt(f"{', '.join(MODEL_NAMES)}.")] = None,
    dataset: Annotated[str | None, _opt(f"{', '.join(DATASETS)}.")] = None,
    epochs: Annotated[int | None, _opt("Training epochs.")] = None,
    seed: Annotated[int | None, _opt("Seed of the model init, data order and coins.")] = None,
    data_dir: Annotated[str | None, _opt("Dataset directory.")] = None,
    device: Annotated[str | None, _opt("auto, cpu, cuda, cuda:1 ...")] = None,
    world_size: Annotated[int | None, _opt("Data-parallel processes (gloo on CPU).")] = None,
    precision: Annotated[str | None, _opt("auto (bf16 on CUDA), fp32, bf16, fp16.")] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the base and SA passes.")
    ] = False,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic algorithms (bit-identical GPU).")
    ] = False,
    set_: SetOption = None,
    out: Annotated[Path | None, _opt("Directory for checkpoint.pt and final.pt.")] = None,
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

    from rstsweep.core.extras import require_extra

    require_extra("run", "rstsweep train")
    from rstsweep.trainers.summary import run_cli

    code = run_cli(config, out=out, resume=resume, as_json=json_)
    if code:
        sys.exit(code)


@app.command("fields")
def fields_cmd() -> None:
    """List every cell-config field (type, range, default, description) for `--set KEY=VALUE`."""
    from rstsweep.core.fields import fields_text

    print(fields_text())
