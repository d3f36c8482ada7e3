"""`python -m rstsweep`: the same entry point as the `rstsweep` console script."""

from rstsweep.cli import main

if __name__ == "__main__":
    main()
