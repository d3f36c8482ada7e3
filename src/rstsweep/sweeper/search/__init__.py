"""`rstsweep search`: Ray Tune + Optuna TPE over one schedule family or policy of a sweep.

command    `SearchOptions`, `search_command`, `run_search`: the space, the resumed study, the run
objective  the Ray Tune trial: one suggestion replicated over the seeds, and its score
callback   the driver-side callback writing each evaluated cell to the store

`command` imports ray and optuna inside its functions; `objective` and `callback` import ray at
module level (they are loaded only once Ray is up).
"""

from rstsweep.sweeper.search.command import SUFFIX, SearchOptions, run_search, search_command

__all__ = ["SUFFIX", "SearchOptions", "run_search", "search_command"]
