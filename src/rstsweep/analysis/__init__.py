"""Figures and tables from the Parquet store alone. Imports neither torch nor ray."""
