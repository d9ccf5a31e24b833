"""g3an: G3AN (Wang et al., CVPR 2020) and its baselines as a library and a command-line tool.

Videos are ``(B, C, T, H, W)`` float tensors in ``[-1, 1]`` everywhere.
"""

from g3an.registry import create_discriminator, create_generator, list_models, make_config

__version__ = "0.1.0"

__all__ = ["__version__", "create_discriminator", "create_generator", "list_models", "make_config"]
