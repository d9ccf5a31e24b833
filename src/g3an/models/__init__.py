"""Registered models. Importing this package runs every model module's registration."""

from g3an.models import g3an  # noqa: F401  (registers "g3an")
from g3an.models.base import VideoDiscriminator, VideoGenerator, sample_labels

__all__ = ["VideoDiscriminator", "VideoGenerator", "sample_labels"]
