"""Video feature extractors: Hara et al.'s 3D ResNeXt-101 (G3AN FID, video IS) and the Kinetics I3D (FVD).

Weights are never downloaded: the ResNeXt files are passed by path (:func:`load_hara_checkpoint`), the
I3D comes from the local store filled by ``g3an weights install i3d`` (:mod:`g3an.metrics.weights`).
"""

from g3an.metrics.extractors.i3d import InceptionI3d, load_i3d_safetensors, load_i3d_tats
from g3an.metrics.extractors.resnext import (
    HaraCheckpoint,
    HaraCheckpointError,
    ResNeXt3D,
    ResNeXtOutput,
    load_hara_checkpoint,
    resnext101,
)

__all__ = [
    "HaraCheckpoint",
    "HaraCheckpointError",
    "InceptionI3d",
    "ResNeXt3D",
    "ResNeXtOutput",
    "load_hara_checkpoint",
    "load_i3d_safetensors",
    "load_i3d_tats",
    "resnext101",
]
