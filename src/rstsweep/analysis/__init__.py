"""Figures and tables from the Parquet store alone. Imports neither torch nor ray.

    results    load a store: sweep membership, per-seed extra time vs SGD, per-case aggregates
    figures    make_figures(store, out_dir, fmt="png") -> list[Path]   (Figures 1-5, Agg backend)
    tables     make_tables(store, fmt="md") -> dict[name, text]        (Tables 1-13, paper vs here)
    synthetic  grid_cells / write_synthetic_store / small_store: synthetic stores of the real grid

Modules are imported explicitly (`from rstsweep.analysis.figures import make_figures`) so that
importing the package does not pull in matplotlib.
"""
