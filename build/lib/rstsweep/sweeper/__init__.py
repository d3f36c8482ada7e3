"""Sweeps: sweeps.yaml -> cells -> Ray Tune; the Parquet store; resume; status.

The only subpackage that imports ray, and only lazily inside the driver, so plan/status stay fast.
"""
