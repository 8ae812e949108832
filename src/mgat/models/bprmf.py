"""BPR-MF: matrix factorisation trained with the BPR loss, the ID-only baseline.

Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian Personalized
Ranking from Implicit Feedback", UAI 2009.

Every user u and item i has a free embedding, and the score is their inner
product ``s(u, i) = <p_u, q_i>``. There is no graph propagation and no content:
the model sees only who interacted with what, so items without a training
interaction keep their random initial embedding.

Shapes: U users, I items, D embedding width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mgat.errors import ConfigError
from mgat.models.base import ModelData, Recommender, TableRows


@dataclass
class BPRMFConfig:
    """Hyperparameters of BPR-MF.

    Args:
        embed_dim: D, the width of the user and item embeddings.
        init_std: standard deviation of the normal initial embeddings.
    """

    embed_dim: int = 64
    init_std: float = 0.1

    def validate(self) -> None:
        if self.embed_dim < 1:
            raise ConfigError(
                f"BPRMFConfig.embed_dim: expected >= 1, got {self.embed_dim}."
            )
        if self.init_std <= 0:
            raise ConfigError(
                f"BPRMFConfig.init_std: expected > 0, got {self.init_std}."
            )


class BPRMF(Recommender):
    """Matrix factorisation, ``s(u, i) = <p_u, q_i>`` (see the module docstring).

    Args:
        data: the sizes and training graph (item features are ignored).
        config: the model's hyperparameters.
    """

    name = "bprmf"
    config_class = BPRMFConfig

    def __init__(self, data: ModelData, config: BPRMFConfig) -> None:
        super().__init__(data, config)
        std = config.init_std
        self.user_embedding = nn.Parameter(
            torch.randn(data.num_users, config.embed_dim) * std
        )
        self.item_embedding = nn.Parameter(
            torch.randn(data.num_items, config.embed_dim) * std
        )

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The free embeddings themselves.

        Shapes:
            returns (U, D) users and (I, D) items.
        """
        return self.user_embedding, self.item_embedding

    @torch.no_grad()
    def regularized(self, users, pos, neg) -> list[TableRows]:
        return [
            (self.user_embedding, users),
            (self.item_embedding, torch.cat([pos, neg])),
        ]
