"""mgat: the Multimodal Graph Attention Network for recommendation.

MGAT (Tao et al., "MGAT: Multimodal Graph Attention Network for Recommendation",
Information Processing & Management 57(5), 2020) with its baselines, evaluation
protocols, recommendation with explanations, and serving.
"""

from mgat.data import Dataset
from mgat.errors import CheckpointError, ConfigError, DataError, MgatError

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Dataset",
    "MgatError",
    "__version__",
]
