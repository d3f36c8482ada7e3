"""rstsweep: run, resume, inspect and analyse Randomized Sharpness-Aware Training sweeps."""

__version__ = "0.1.0"
