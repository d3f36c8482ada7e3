"""Figures and tables from the Parquet store alone (store + core + schedules; no torch, no ray).

    results      load a store: sweep membership and tags, per-seed extra time vs SGD, aggregates
    tags         the sweeps.yaml `figure:`/`table:` tags and Fig. 2 group numbers (old stores:
                 filled from the shipped sweeps.yaml)
    figures      make_figures(store, out_dir, fmt="png") -> list[Path]: Figures 1-5 (figures_delta,
                 figures_schedule) and the Pareto view (figures_pareto), via plotting's parts
    tables       make_tables(store, fmt="md") -> dict[name, text]: Tables 1-13 (case_tables),
                 best at budget (pareto), paper vs here (paper), the ordering check (ordering)
    table        Table: a table that renders itself as markdown, CSV or LaTeX

Modules are imported explicitly (`from rstsweep.analysis.figures import make_figures`) so that
importing the package does not pull in matplotlib. Synthetic stores for tests and benchmarks live
in `rstsweep.testing.synthetic`.
"""
