"""rstsweep: run, resume, inspect and analyse Randomized Sharpness-Aware Training sweeps.

The Python API (docs/api.md), imported lazily so that `import rstsweep` stays cheap and never
pulls in torch or ray:

    open_store(path_or_uri) -> ResultStore   trials(), epochs(), draws(cell_id), cells(sweep),
                                             failures(), sql(query) (DuckDB, `rstsweep[sql]`)
    load_sweeps(file=None)                   the sweeps file (default ./sweeps.yaml, else packaged)
    plan(sweep, ...), run(sweep, ...)        what `rstsweep plan` / `rstsweep run` call
    figures.figure1(store) ... pareto(store) matplotlib Figures; the backend is left alone
    register_family(...)                     a schedule family (the paper's Table 2 and yours)
    register_model(name, build, ...)         your model / data set, known to sweeps.yaml, train,
    register_dataset(name, load, ...)        plan and (from a plugin) the Ray workers
    RstError                                 the one user-error type
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it, imported on first use
_LAZY = {
    "open_store": "rstsweep.api",
    "ResultStore": "rstsweep.api",
    "load_sweeps": "rstsweep.api",
    "plan": "rstsweep.api",
    "run": "rstsweep.api",
    "register_family": "rstsweep.schedules.families",
    "register_model": "rstsweep.core.registry",
    "register_dataset": "rstsweep.core.registry",
    "RstError": "rstsweep.errors",
}
_SUBMODULES = ("figures",)

__all__ = ["__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"rstsweep.{name}")
    raise AttributeError(f"module 'rstsweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
