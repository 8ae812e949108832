"""Model registry: every recommender by name, built from a dataset and a config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgat import config as configuration
from mgat.errors import ConfigError
from mgat.models.base import LossParts, ModelData, Recommender
from mgat.models.mgat import MGAT, MGATConfig

MODELS: dict[str, type[Recommender]] = {MGAT.name: MGAT}


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
    "MGAT",
    "MODELS",
    "LossParts",
    "MGATConfig",
    "ModelData",
    "Recommender",
    "create_model",
    "model_class",
    "register",
]
