"""`rstsweep ARGS` (run, resume, search) exactly as the console script runs it, with the
stand-in trainer of tests/test_driver_fake.py in place of the torch trainer (the cluster tests run
on machines without datasets). Usage: python tests/fake_cli.py run SWEEP --address ...
(tests/ on PYTHONPATH)."""

from __future__ import annotations

import functools

from rstsweep.sweeper.resources import apply_ray_env

apply_ray_env()  # before ray is imported (register_by_value imports it)

import test_driver_fake as fake  # noqa: E402
from rstsweep import cli  # noqa: E402
from rstsweep.sweeper import driver  # noqa: E402
from rstsweep.sweeper.search import command as search  # noqa: E402

if __name__ == "__main__":
    fake.register_by_value()  # Ray workers cannot import the test modules
    driver.run_sweep = functools.partial(driver.run_sweep, train_fn=fake.fake_train)
    search.run_search = functools.partial(search.run_search, train_fn=fake.fake_train)
    cli.main()
