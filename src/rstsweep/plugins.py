"""User plugins: modules named in the entry-point group `rstsweep.plugins` of any installed
distribution. The command line imports them when a command starts, and every Ray trial imports
them before it builds its cell, so what a plugin registers at import time (a schedule family with
`register_family`, a policy, an algorithm, a model with `register_model`, a data set with
`register_dataset`) is known to sweeps.yaml, `rstsweep schedules`, `train`, the driver and the
workers alike. A plugin's pyproject.toml declares, e.g.:

    [project.entry-points."rstsweep.plugins"]
    my_schedules = "my_package.rst_plugin"

Standard library only (importlib.metadata), so loading costs nothing when there are none.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from rstsweep.errors import RstError

GROUP = "rstsweep.plugins"

_loaded: dict[str, str] = {}  # entry-point name -> module, imported once per process


def load_plugins() -> dict[str, str]:
    """Import every plugin of the group not yet imported in this process; returns {name: module}
    of all loaded so far. A plugin that fails to import is an RstError naming it."""
    for point in entry_points(group=GROUP):
        if point.name in _loaded:
            continue
        try:
            point.load()
        except Exception as exc:  # any import-time failure of user code: one line naming it
            raise RstError(
                f"plugin {point.name!r} ({point.value}, entry point {GROUP}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _loaded[point.name] = point.value
    return dict(_loaded)
