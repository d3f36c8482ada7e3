"""The one PyTorch trainer every sweep cell runs: SAM-family optimizers, models, data, RST loop.

Torch, never ray. The torch-free contracts it trains against (CellConfig, TrainResult, the
catalogue, the algorithm registry) live in `rstsweep.core`.
"""

from rstsweep.trainers.data import load_data
from rstsweep.trainers.loop import train
from rstsweep.trainers.models import build_model
from rstsweep.trainers.optim import build_lr_scheduler, build_optimizer
from rstsweep.trainers.sam import SAM, disable_running_stats
from rstsweep.trainers.variants import ESAM, GSAM, LookSAM

__all__ = [
    "ESAM",
    "GSAM",
    "SAM",
    "LookSAM",
    "build_lr_scheduler",
    "build_model",
    "build_optimizer",
    "disable_running_stats",
    "load_data",
    "train",
]
