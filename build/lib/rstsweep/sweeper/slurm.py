"""`rstsweep slurm`: an sbatch script that runs a sweep on a SLURM allocation through Ray.

The script follows Ray's documented SLURM pattern (docs.ray.io, "Deploying on Slurm"): one task
per node; `ray start --head` on the first node and `ray start --address` on the others, each
launched with `srun` and kept alive with `--block`; then the driver, `rstsweep run SWEEP --address
HEAD`, in the batch step on the first node, with the same sweeps file, profile, store and settings
as the command line that wrote the script. Ray 2.60's token authentication is used throughout: the
script exports `RAY_AUTH_MODE=token` and one `RAY_AUTH_TOKEN` (from `~/.ray/auth_token`, created
if missing), which `srun` passes on to the head, the workers and the driver alike.

Preemption and requeue are safe (`#SBATCH --requeue`): the store is the truth and re-running is
the resume, so a requeued job skips the finished cells and continues the others from their last
epoch checkpoint. No ray, no torch here.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rstsweep.errors import RstError
from rstsweep.sweeper.options import RunOptions


@dataclass(frozen=True)
class SlurmJob:
    """The allocation: nodes, what each node offers Ray, and SLURM's own settings."""

    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_node: int | None = None  # None: SLURM's default for one task per node
    partition: str | None = None
    time: str | None = None  # SLURM time limit, e.g. "24:00:00"
    job_name: str | None = None
    ray_port: int | None = None  # None: derived from the job id (several jobs may share a node)

    def validate(self) -> None:
        if self.nodes < 1:
            raise RstError(f"--nodes: {self.nodes} must be >= 1")
        if self.gpus_per_node < 0:
            raise RstError(f"--gpus-per-node: {self.gpus_per_node} must be >= 0")
        if self.cpus_per_node is not None and self.cpus_per_node < 1:
            raise RstError(f"--cpus-per-node: {self.cpus_per_node} must be >= 1")


def _abs(path: Path | str) -> str:
    text = str(path)
    return text if "://" in text else str(Path(text).expanduser().absolute())


def run_arguments(o: RunOptions) -> list[str]:
    """The `rstsweep run` arguments that reproduce `o` on the cluster (paths made absolute)."""
    args = [o.sweep, "--file", _abs(o.file), "--profile", o.profile, "--store", _abs(o.store)]
    args += ["--cpus-per-trial", f"{o.cpus_per_trial:g}"]
    args += ["--gpus-per-trial", f"{o.gpus_per_trial:g}"]
    args += ["--max-failures", str(o.max_failures)]
    if o.max_concurrent is not None:
        args += ["--max-concurrent", str(o.max_concurrent)]
    if o.scratch is not None:
        args += ["--scratch", _abs(o.scratch)]
    if o.data_dir is not None:
        args += ["--data-dir", _abs(o.data_dir)]
    for key, value in sorted(o.overrides.items()):
        args += ["--set", f"{key}={value}"]
    for name in o.trackers or ("none",):
        args += ["--tracker", name]
    return args


def render_script(o: RunOptions, job: SlurmJob, python: str | None = None) -> str:
    """The sbatch script text (runs `rstsweep` and `ray` with `python`, default this one)."""
    job.validate()
    python = python or sys.executable
    q = shlex.quote
    sbatch = [
        f"--job-name={job.job_name or 'rstsweep-' + o.sweep}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        "--requeue",
        f"--chdir={Path.cwd()}",
        "--output=rstsweep-%x-%j.log",
        "--open-mode=append",  # a requeued job appends to the same log
    ]
    if job.cpus_per_node:
        sbatch.append(f"--cpus-per-task={job.cpus_per_node}")
    else:  # no CPU count given: the whole node for Ray
        sbatch.append("--exclusive")
    if job.gpus_per_node:
        sbatch.append(f"--gpus-per-task={job.gpus_per_node}")
    if job.partition:
        sbatch.append(f"--partition={job.partition}")
    if job.time:
        sbatch.append(f"--time={job.time}")
    header = "\n".join(f"#SBATCH {line}" for line in sbatch)
    port = str(job.ray_port) if job.ray_port else "$((20000 + SLURM_JOB_ID % 20000))"
    driver = " ".join(q(a) for a in run_arguments(o))
    return f"""#!/bin/bash
{header}
#
# rstsweep sweep {o.sweep!r} (profile {o.profile}) on {job.nodes} node(s) through Ray.
# Preemption and requeue are safe: the result store is the truth and re-running is the resume, so a
# requeued job (--requeue above; `scontrol requeue JOBID`) skips the cells already in the store and
# continues the others from their last epoch checkpoint. Resubmitting this script does the same.
set -euo pipefail

PYTHON={q(python)}
RAY="$(dirname "$PYTHON")/ray"  # the Ray of the same environment as rstsweep
[ -x "$RAY" ] || RAY=ray
export RAY_USAGE_STATS_ENABLED=0
# Ray's token authentication: head, workers and driver share one token (srun passes the environment)
export RAY_AUTH_MODE=token
if [ -z "${{RAY_AUTH_TOKEN:-}}" ]; then
    RAY_AUTH_TOKEN=$("$RAY" get-auth-token --generate 2>/dev/null)
    export RAY_AUTH_TOKEN
fi

nodes=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
head_node=${{nodes[0]}}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{{print $1}}')
port={port}
address="$head_ip:$port"
cpus=${{SLURM_CPUS_PER_TASK:-${{SLURM_CPUS_ON_NODE:-$(nproc)}}}}
gpus={job.gpus_per_node}
echo "rstsweep-slurm: Ray head on $head_node ($address), ${{#nodes[@]}} node(s)," \\
    "$cpus CPU + $gpus GPU each"

srun --nodes=1 --ntasks=1 -w "$head_node" "$RAY" start --head --node-ip-address="$head_ip" \\
    --port="$port" --num-cpus="$cpus" --num-gpus="$gpus" --include-dashboard=false \\
    ${{RSTSWEEP_RAY_TMPDIR:+--temp-dir="$RSTSWEEP_RAY_TMPDIR"}} --block &
for _ in $(seq 120); do  # the head answers within seconds; give a busy node two minutes
    "$RAY" health-check --address "$address" >/dev/null 2>&1 && break
    sleep 1
done
for ((i = 1; i < ${{#nodes[@]}}; i++)); do
    srun --nodes=1 --ntasks=1 -w "${{nodes[$i]}}" "$RAY" start --address="$address" \\
        --num-cpus="$cpus" --num-gpus="$gpus" --block &
    sleep 5
done

# when this script ends SLURM ends the job's steps, the Ray nodes with them
"$PYTHON" -m rstsweep.cli run {driver} --address "$address"
"""


def write_script(text: str, out: Path) -> Path:
    """Write the script (executable) and return its path."""
    from rstsweep.core.atomic import atomic_write_text

    atomic_write_text(out, text)
    out.chmod(0o755)
    return out


def submit(path: Path) -> str:
    """`sbatch --parsable PATH`; returns the job id. RstError when sbatch is missing or refuses."""
    if shutil.which("sbatch") is None:
        raise RstError("--submit: sbatch not found on PATH (run this on a SLURM login node)")
    done = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise RstError(f"--submit: sbatch refused {path}: {message[-1] if message else ''}")
    return done.stdout.strip().split(";")[0]


def slurm_command(o: RunOptions, job: SlurmJob, out: Path | None, submit_it: bool) -> None:
    """`rstsweep slurm`: check that the sweep expands (a bad file, sweep or profile fails here, not
    in the queue), write the script, print its path and, with `--submit`, the job id."""
    from rstsweep.sweeper.spec import expand

    cells = expand(o.file, o.sweep, o.profile)
    job.validate()
    path = write_script(render_script(o, job), out or Path(f"rstsweep-{o.sweep}.sbatch"))
    print(f"wrote {path} ({len({c.cell_id for c in cells})} cells on {job.nodes} node(s))")
    if submit_it:
        print(f"submitted job {submit(path)}")
    else:
        print(f"submit with: sbatch {path}")
