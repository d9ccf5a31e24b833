"""Registered models. Importing this package runs every model module's registration."""

# isort: off
from g3an.models import g3an  # noqa: F401  (registers "g3an")
from g3an.models import mocogan  # noqa: F401  (registers "mocogan")
from g3an.models import tgan  # noqa: F401  (registers "tgan")
from g3an.models import vgan  # noqa: F401  (registers "vgan")

# isort: on
from g3an.models.base import VideoDiscriminator, VideoGenerator, sample_labels

__all__ = ["VideoDiscriminator", "VideoGenerator", "sample_labels"]
