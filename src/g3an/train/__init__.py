"""Training: typed config, objectives, the one loop, checkpoints and exact resume, torchrun support."""

from g3an.train.config import OptimConfig, TrainConfig
from g3an.train.loop import TrainingDiverged, TrainResult, fit, latest_checkpoint

__all__ = ["OptimConfig", "TrainConfig", "TrainResult", "TrainingDiverged", "fit", "latest_checkpoint"]
