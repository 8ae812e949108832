"""LightGCN: ID embeddings smoothed over the user-item graph, no transforms.

He, Deng, Wang, Li, Zhang, Wang, "LightGCN: Simplifying and Powering Graph
Convolution Network for Recommendation", SIGIR 2020.

Each node starts from a free embedding e^(0). A layer is a symmetric-normalised
neighbour sum with no weight matrix and no non-linearity,

    e_h^(k+1) = sum_{t in N(h)} 1 / sqrt(d_h d_t) * e_t^(k)

i.e. e^(k+1) = D^-1/2 A D^-1/2 e^(k) over the bipartite graph. The final
representation averages all layers, the input included,
e = (e^(0) + ... + e^(L)) / (L + 1), and the score is <e_u, e_i>. Like the
paper, only the layer-0 embeddings of the batch are L2-regularised.

Items without a training interaction have no neighbours: every layer after the
first gives them zero, so their representation is e^(0) / (L + 1).

Shapes: U users, I items, N = U + I nodes, E directed edges, D embedding width,
L layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mgat.errors import ConfigError
from mgat.graph import propagate_mean
from mgat.models.base import ModelData, Recommender, TableRows


@dataclass
class LightGCNConfig:
    """Hyperparameters of LightGCN.

    Args:
        embed_dim: D, the width of the node embeddings.
        num_layers: L >= 0 propagation layers (0 is matrix factorisation).
        init_std: standard deviation of the normal initial embeddings (0.1 in
            the paper's code).
    """

    embed_dim: int = 64
    num_layers: int = 3
    init_std: float = 0.1

    def validate(self) -> None:
        if self.embed_dim < 1:
            raise ConfigError(
                f"LightGCNConfig.embed_dim: expected >= 1, got {self.embed_dim}."
            )
        if self.num_layers < 0:
            raise ConfigError(
                f"LightGCNConfig.num_layers: expected >= 0, got {self.num_layers}."
            )
        if self.init_std <= 0:
            raise ConfigError(
                f"LightGCNConfig.init_std: expected > 0, got {self.init_std}."
            )


class LightGCN(Recommender):
    """Layer-averaged linear propagation of ID embeddings (see the module docstring).

    Args:
        data: the sizes and training graph (item features are ignored).
        config: the model's hyperparameters.
    """

    name = "lightgcn"
    config_class = LightGCNConfig

    def __init__(self, data: ModelData, config: LightGCNConfig) -> None:
        super().__init__(data, config)
        num_nodes = data.num_users + data.num_items
        self.embedding = nn.Parameter(
            torch.randn(num_nodes, config.embed_dim) * config.init_std
        )

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the layer outputs e^(0)..e^(L).

        Shapes:
            returns (U, D) users and (I, D) items.
        """
        mean = propagate_mean(self.graph, self.embedding, self.config.num_layers)
        return mean.split([self.num_users, self.num_items])

    def regularized(self, users, pos, neg) -> list[TableRows]:
        offset = self.num_users
        return [(self.embedding, torch.cat([users, pos + offset, neg + offset]))]
