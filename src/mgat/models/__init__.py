"""Model registry: every recommender by name, built from a dataset and a config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgat import config as configuration
from mgat.errors import ConfigError
from mgat.models.base import LossParts, ModelData, Recommender
from mgat.models.bprmf import BPRMF, BPRMFConfig
from mgat.models.lightgcn import LightGCN, LightGCNConfig
from mgat.models.mgat import MGAT, MGATConfig
from mgat.models.mmgcn import MMGCN, MMGCNConfig
from mgat.models.vbpr import VBPR, VBPRConfig

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls for cls in (MGAT, MMGCN, LightGCN, VBPR, BPRMF)
}


def register(cls: type[Recommender]) -> type[Recommender]:
    """Add a model class to the registry under ``cls.name``."""
    MODELS[cls.name] = cls
    return cls


def model_class(name: str) -> type[Recommender]:
    if name not in MODELS:
        raise ConfigError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}."
        )
    return MODELS[name]


def create_model(
    name: str, data: ModelData, values: Mapping[str, Any] | None = None
) -> Recommender:
    """Build model ``name`` on ``data`` with config ``values`` (dict or strings)."""
    cls = model_class(name)
    return cls(data, configuration.build(cls.config_class, values))


__all__ = [
    "BPRMF",
    "MGAT",
    "MMGCN",
    "MODELS",
    "VBPR",
    "BPRMFConfig",
    "LightGCN",
    "LightGCNConfig",
    "LossParts",
    "MGATConfig",
    "MMGCNConfig",
    "ModelData",
    "Recommender",
    "VBPRConfig",
    "create_model",
    "model_class",
    "register",
]
