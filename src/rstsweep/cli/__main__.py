"""`python -m rstsweep.cli`: the console entry point (what SLURM scripts and tests run)."""

from rstsweep.cli import main

main()
