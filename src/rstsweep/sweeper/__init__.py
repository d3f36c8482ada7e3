"""Sweeps: sweeps.yaml -> cells -> Ray Tune; the Parquet store; resume; status. The only place that imports ray (lazily, in the driver)."""
