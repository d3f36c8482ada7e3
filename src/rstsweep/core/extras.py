"""The optional dependency groups of the package (`pip install 'rstsweep[run]'`, ...) and the one
check a command makes before importing them: a command that needs a missing group stops with one
line naming the pip command (RstError, exit 2) instead of an ImportError traceback. The core
install (numpy, pandas, pyarrow, matplotlib, typer, pydantic, pyyaml, rich) plans, inspects and
analyses stores; training and Ray need `run`. Checks with `find_spec`: nothing is imported.
"""

from __future__ import annotations

import importlib.util

from rstsweep.errors import RstError

# extra -> the top-level modules it provides (pyproject.toml's [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "run": ("torch", "torchvision", "ray", "optuna"),
    "trackers": ("tensorboard", "mlflow", "wandb"),
    "sql": ("duckdb",),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` that are not importable here."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def has_extra(extra: str) -> bool:
    return not missing_modules(extra)


def require_extra(extra: str, what: str) -> None:
    """RstError (one line, exit 2) unless every module of `extra` is installed; `what` names the
    command or function that needs it, e.g. "rstsweep run"."""
    missing = missing_modules(extra)
    if missing:
        raise RstError(
            f"{what} needs {', '.join(missing)} (not installed): pip install 'rstsweep[{extra}]'"
        )
