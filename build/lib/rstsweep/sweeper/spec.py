"""sweeps.yaml: validation (pydantic; one-line errors naming the YAML path) and expansion to cells.

File layout (see the repo's sweeps.yaml for the real thing):

    defaults: {models: [...], datasets: [...]}       # sweeps without their own lists use these
    profiles:
      NAME:
        seeds: [0, 1]                 # every cell runs once per seed
        models: [fastcnn]             # optional: replaces every sweep's model list (collapse)
        datasets: [fashion-mnist]     # optional: replaces every sweep's dataset list
        config: {...}                 # CellConfig defaults of the profile
        per_model: {MODEL: {...}}     # CellConfig overrides for one model
        per_dataset: {DATASET: {...}} # CellConfig overrides for one dataset (e.g. rho)
        overrides: {...}              # applied last, over sweep/group settings (epochs of a demo)
    sweeps:
      NAME:
        description: ...
        figure: / table: ...          # what it feeds in the paper
        models: / datasets: [...]
        max_seeds: 3                  # use only the first k seeds of the profile
        config: {...}                 # CellConfig overrides for the whole sweep (augment: cutout)
        per_model: {MODEL: {...}}     # ... and for one model of the sweep (ViT's epochs)
        include: [SWEEP, SWEEP.GROUP] # reuse another sweep's groups (same cells, same cell_ids)
        groups:
          GROUP:
            grid: {a_c: [0.1, 0.2]}   # cartesian product over the axes
            schedule: "constant({a_c})"   # or {piecewise_group: 1, value: "{b_p}"} / linear_group
            label: "a_c={a_c}"        # default: "k=v,k=v" (or the group name)
            x: "{a_c}"                # x-axis value for plots; arithmetic allowed: "1 - {b_p}"
            rho_scale: 10             # multiplies the resolved rho (ASAM's ~10x radius)
            algorithm: gnr            # ... any other CellConfig field, templated with grid values
            alpha: "{g}/{p}"

Config precedence (later wins): CellConfig defaults < profile.config < profile.per_model <
profile.per_dataset < sweep.config < sweep.per_model < group fields < profile.overrides < `--set`;
then model, dataset and seed. Cells are ordered seed-major (all cells of seed 0 first) so a partly
run sweep is complete early.

This module is the public face of the sweep spec: the schema and its checks live in `sweeps_file`,
the `{name}` template language in `templates`, expansion in `expansion`, `Cell` in `cell`.
No torch, no ray.
"""

from __future__ import annotations

from rstsweep.core.catalog import DATASETS
from rstsweep.sweeper.cell import Cell, cells_by_group
from rstsweep.sweeper.expansion import expand, expand_all
from rstsweep.sweeper.sweeps_file import (
    Defaults,
    GroupSpec,
    ProfileSpec,
    SweepsFile,
    SweepSpec,
    load_sweeps,
    parse_sweeps,
    sweep_names,
)

__all__ = [
    "DATASETS",
    "Cell",
    "Defaults",
    "GroupSpec",
    "ProfileSpec",
    "SweepSpec",
    "SweepsFile",
    "cells_by_group",
    "expand",
    "expand_all",
    "load_sweeps",
    "parse_sweeps",
    "sweep_names",
]
