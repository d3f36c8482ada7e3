"""Declared pyarrow schemas of the result store. Pure pyarrow: no torch, no ray.

Layout of a store directory (every file immutable, written as `.tmp-*` then renamed):
    <store>/trials/part-*.parquet    one row per finished cell (status ok or diverged)  -> done
    <store>/epochs/part-*.parquet    one row per cell and epoch
    <store>/draws/part-*.parquet     the coin draws X_t of each cell, bit-packed
    <store>/cells/part-*.parquet     sweep membership: which cells a sweep/group holds
    <store>/failures/part-*.parquet  crashed attempts (not done: retried on the next run)
    <store>/probes/part-*.parquet    step-cost probes of settings not run yet (plan's estimates)
    <store>/heartbeat.json           live driver state (for `status` while a run is going)

A cell's epochs and draws files are written before its trials row; the trials row (the "done"
marker) names its `attempt_id`, and readers keep only epochs/draws rows of that attempt, so a kill
between the writes leaves no duplicate and no orphan visible to readers.
"""

from __future__ import annotations

import pyarrow as pa

TRIALS = pa.schema(
    [
        ("cell_id", pa.string()),
        ("attempt_id", pa.string()),  # the attempt whose epochs/draws rows belong to this trial
        ("sweep", pa.string()),
        ("group", pa.string()),
        ("label", pa.string()),  # human label of the cell inside its group, e.g. "a_c=0.6"
        ("x", pa.float64()),  # the group's x-axis value (Δη, a_p, ...) if the sweep declares one
        ("family", pa.string()),
        ("schedule", pa.string()),  # canonical spec, e.g. "piecewise(a=0, b=0.3)"
        ("param_a", pa.float64()),  # first schedule parameter (a_c, a_p, a_l), null if none
        ("param_b", pa.float64()),  # second schedule parameter (b_p, b_l), null if none
        ("algorithm", pa.string()),
        ("base_optimizer", pa.string()),
        ("model", pa.string()),
        ("dataset", pa.string()),
        ("augment", pa.string()),
        ("seed", pa.int64()),
        ("epochs", pa.int64()),
        ("rho", pa.float64()),
        ("alpha", pa.float64()),
        ("label_noise", pa.float64()),
        ("train_subset", pa.int64()),
        ("steps", pa.int64()),
        ("sa_steps", pa.int64()),
        ("expected_extra", pa.float64()),  # discrete mean of p(t) over the run's T steps
        ("closed_form_extra", pa.float64()),
        ("realized_extra", pa.float64()),  # extra pass units run / steps (core.passes)
        ("train_time_s", pa.float64()),
        ("sgd_step_s", pa.float64()),  # mean wall time of a base (one-pass) step
        ("sa_step_s", pa.float64()),  # mean wall time of a sharpness-aware step
        ("train_loss", pa.float64()),
        ("train_error", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_error", pa.float64()),  # fraction in [0, 1]
        ("status", pa.string()),  # "ok" | "diverged"
        ("error", pa.string()),  # reason when status != ok
        ("config_json", pa.string()),  # the full CellConfig
        ("versions", pa.string()),  # JSON: rstsweep, torch, python, ray
        ("finished_at", pa.timestamp("s", tz="UTC")),
        # added by H-sweeper-core (additive): the profile the cell ran under, and its batch size
        # (plan's time estimate looks up measured step costs by model/dataset/batch)
        ("profile", pa.string()),
        ("batch_size", pa.int64()),
        ("world_size", pa.int64()),  # data-parallel processes of the cell (1: one process)
        # additive: fp16 loss scaling, memory, and the reproducibility manifest of the run
        ("skipped_steps", pa.int64()),  # fp16 steps skipped by the loss scaler (overflow)
        ("peak_memory_bytes", pa.int64()),  # CUDA: max allocated; CPU: peak RSS; null: unknown
        ("torch_version", pa.string()),
        ("cuda_version", pa.string()),  # torch.version.cuda (null: a CPU build)
        ("cudnn_version", pa.string()),
        ("device_type", pa.string()),  # "cuda", "cpu", ...
        ("device_name", pa.string()),  # the GPU's name, or the CPU's
        ("device_memory_bytes", pa.int64()),  # total GPU memory (null on CPU)
        ("device_count", pa.int64()),  # GPUs visible to the trial's process
        ("driver_version", pa.string()),  # NVIDIA driver (null: none found)
        ("precision", pa.string()),  # resolved: fp32, bf16 or fp16
        ("compiled", pa.bool_()),
        ("deterministic", pa.bool_()),
        ("git_commit", pa.string()),  # the project's commit when run from a checkout
        ("git_dirty", pa.bool_()),
        # added with pass counting (additive): the coin fraction ΣX_t/T, and the mean time of an
        # SA step's first forward-backward. Rows written before have realized_extra = ΣX_t/T and
        # no sa_fraction: the reader fills it from realized_extra and flags the row
        # (`extra_from_coins`, a read-time column, not stored).
        ("sa_fraction", pa.float64()),
        ("first_pass_s", pa.float64()),
    ]
)

EPOCHS = pa.schema(
    [
        ("cell_id", pa.string()),
        ("attempt_id", pa.string()),
        ("epoch", pa.int64()),  # 1-based
        ("train_loss", pa.float64()),
        ("train_error", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_error", pa.float64()),
        ("lr", pa.float64()),
        ("steps", pa.int64()),  # cumulative
        ("sa_steps", pa.int64()),  # cumulative
        ("time_s", pa.float64()),  # cumulative training wall time
    ]
)

DRAWS = pa.schema(
    [
        ("cell_id", pa.string()),
        ("attempt_id", pa.string()),
        ("steps", pa.int64()),  # T: number of valid bits
        ("bits", pa.binary()),  # numpy.packbits(X_0..X_{T-1}), big-endian bit order
        # closed-loop policies only (null for schedules): the per-step signal ‖g_t‖² the policy
        # saw, little-endian float32 bytes, T values (X_t was decided from step t − SIGNAL_LAG's)
        ("signal", pa.binary()),
    ]
)

CELLS = pa.schema(
    [
        ("sweep", pa.string()),
        ("group", pa.string()),
        ("label", pa.string()),
        ("x", pa.float64()),
        ("cell_id", pa.string()),
        ("profile", pa.string()),
        # what the cell's sweep feeds (sweeps.yaml `figure:` / `table:`, e.g. "Fig. 1"), and the
        # number of its Fig. 2 group (piecewise/linear group 1-3); null when not declared
        ("figure", pa.string()),
        ("table", pa.string()),
        ("group_index", pa.int64()),
    ]
)

FAILURES = pa.schema(
    [
        ("cell_id", pa.string()),
        ("sweep", pa.string()),
        ("group", pa.string()),
        ("error", pa.string()),
        ("failed_at", pa.timestamp("s", tz="UTC")),
    ]
)

# step-cost probes: a few timed steps per setting before anything ran (estimates, not results)
PROBES = pa.schema(
    [
        ("model", pa.string()),
        ("dataset", pa.string()),
        ("algorithm", pa.string()),
        ("batch_size", pa.int64()),
        ("width", pa.int64()),  # null: the model's default width
        ("device", pa.string()),  # "cpu" | "cuda"
        ("sgd_step_s", pa.float64()),
        ("sa_step_s", pa.float64()),  # null for SGD
        ("peak_memory_bytes", pa.int64()),  # CUDA: max allocated; CPU: peak RSS
        ("steps", pa.int64()),  # timed steps per branch
        ("probed_at", pa.timestamp("s", tz="UTC")),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "trials": TRIALS,
    "epochs": EPOCHS,
    "draws": DRAWS,
    "cells": CELLS,
    "failures": FAILURES,
    "probes": PROBES,
}
