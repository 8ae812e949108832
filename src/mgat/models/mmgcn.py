"""MMGCN: one graph convolution branch per modality, fused with ID embeddings.

Wei, Wang, Nie, He, Hong, Chua, "MMGCN: Multi-modal Graph Convolution Network
for Personalized Recommendation of Micro-video", ACM MM 2019.

Every modality m has its own branch over the shared user-item graph, with its
own parameters. Items enter a branch as their projected features W_m f_i, users
as a trainable preference vector, both L2-normalised. A layer updates node h
from its neighbours N(h) and its own state x_h:

    h_h     = agg_{t in N(h)} LeakyReLU(W1_m x_t)       (agg: mean, max or symmetric)
    x_hat_h = LeakyReLU(W2_m x_h) + e_h                 (e_h: shared ID embedding)
    x_h'    = LeakyReLU(W3_m [h_h || x_hat_h])          (concat combination)
            | LeakyReLU(W3_m h_h + x_hat_h)             (element-wise combination)

Every neighbour counts the same: this equal weighting is what MGAT's gated
attention replaces. A branch returns its last layer's output; the modalities are
fused by sum (paper) or mean (released code), and the score of (u, i) is the
inner product of the fused representations.

The published code differs from the paper in ways that are defects, and none of
them is reproduced here: its ID and preference embeddings are plain tensors
that the optimiser never updates (here every embedding is an ``nn.Parameter``);
its concat flag is a string, so it is always true whatever is passed (here
``combination`` selects for real); its full-ranking evaluation masks training
items with 1e-5 instead of -inf (the library's evaluation masks with -inf).

The default preset aggregates with symmetric normalisation, the sum weighted
by 1 / sqrt(d_h d_t) (Kipf and Welling, ICLR 2017), instead of the paper's
mean; ``--preset paper`` keeps the mean. On TikTok's validation split
(Recall@20 / NDCG@20, seeds 0-2), the symmetric weights reached .0918 / .0453,
.0908 / .0353 and .0914 / .0337; the mean reached Recall@20 .0898, .0675 and
.0892 (seed 0's NDCG@20: .0338). With the mean, validation peaks after a few
epochs and then falls to the popularity ranking, one item direction
dominating, and the peak depends on the seed. With the symmetric weights it
stays near the popularity ranking for 10-20 epochs and then rises, hence the
default's patience of 30. Over the three seeds its test Recall@20 / NDCG@20 is
.0847 / .0357 (docs/benchmarks/tiktok/), above the published .0730 / .0307,
which used a third modality, text, that the bundled data lacks.
Also tried with the mean, none beyond the spread between seeds (seed-0
validation Recall@20): a split learning rate (IDs at 1e-3 or 5e-3, branches
at 0.03-0.3 of it, best .0757; IDs at 1e-5 or 3e-5, branches 10 or 30 times
faster, .0701-.0865), Xavier layer weights (.0846), and with them one layer
or mean fusion (.0819-.0875), slower rates (3e-5 .0754, 1e-5 .0774), batch
512 with D_m = 32 (.0656), batch 8192 at lr 4e-4 (.0882), L2 weight 1e-3 or
1e-2 (.0898), ID embeddings drawn with standard deviation 0.1 (.0715),
negatives drawn from trained items only (.0796), D_m = 128 (.0901) or 256
(.0964, but .0669 at seed 1), three layers (.0964, but .0724 at seed 1), and
the released code's frozen ID embeddings (.0842 / .0263).

Shapes: U users, I items, N = U + I nodes, E directed edges, M modalities,
D ID width, D_m modality latent width, F_m feature width, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mgat.errors import ConfigError
from mgat.graph import Graph, spmm, symmetric_weights
from mgat.models.base import ModelData, Recommender, TableRows, id_embeddings
from mgat.ops import row_normalize


@dataclass
class MMGCNConfig:
    """Hyperparameters of MMGCN.

    Args:
        embed_dim: D, the width of the ID embeddings and of every layer's output.
        latent_dim: D_m, the width item features are projected to and of the
            users' preference vectors.
        num_layers: L >= 1 graph convolution layers per modality.
        aggregation: ``mean`` or ``max`` over a node's neighbours (the paper's
            two), or ``symmetric``: the sum weighted by 1 / sqrt(d_h d_t), the
            normalisation of graph convolutional networks (Kipf and Welling,
            ICLR 2017) and of LightGCN.
        combination: ``concat`` or ``element`` (element-wise sum).
        modality_fusion: ``sum`` (paper) or ``mean`` (released code).
        negative_slope: slope of every LeakyReLU.
        modality_lr_scale: the learning rate of the modality branches (feature
            projections, preferences and layers) relative to the training
            ``lr``; the ID embeddings learn at ``lr``. 1 trains everything at
            one rate, as the paper does.
        layer_init: initial weights of each layer's three maps (message, own
            state, combination): ``default``, PyTorch's uniform with bound
            1/sqrt(fan_in), or ``xavier``, normal with variance
            2 / (fan_in + fan_out), as the published code draws them.
        id_init_std: standard deviation of the normal initial ID embeddings;
            None draws them Xavier-normal, as the published code does (a
            standard deviation near sqrt(2 / N), 0.011 on TikTok).
    """

    embed_dim: int = 64
    latent_dim: int = 64
    num_layers: int = 2
    aggregation: Literal["mean", "max", "symmetric"] = "mean"
    combination: Literal["concat", "element"] = "concat"
    modality_fusion: Literal["sum", "mean"] = "sum"
    negative_slope: float = 0.01
    modality_lr_scale: float = 1.0
    layer_init: Literal["default", "xavier"] = "default"
    id_init_std: float | None = None

    def validate(self) -> None:
        if self.embed_dim < 1 or self.latent_dim < 1:
            raise ConfigError(
                "MMGCNConfig: expected embed_dim and latent_dim >= 1, got "
                f"{self.embed_dim} and {self.latent_dim}."
            )
        if self.num_layers < 1:
            raise ConfigError(
                f"MMGCNConfig.num_layers: expected >= 1, got {self.num_layers}."
            )
        if self.modality_lr_scale <= 0:
            raise ConfigError(
                "MMGCNConfig.modality_lr_scale: expected > 0, got "
                f"{self.modality_lr_scale}."
            )
        if self.id_init_std is not None and self.id_init_std <= 0:
            raise ConfigError(
                "MMGCNConfig.id_init_std: expected > 0 or None, got "
                f"{self.id_init_std}."
            )
        if self.negative_slope < 0:
            raise ConfigError(
                f"MMGCNConfig.negative_slope: expected >= 0, got {self.negative_slope}."
            )


def aggregate(graph: Graph, messages: torch.Tensor, how: str) -> torch.Tensor:
    """Mean, max or symmetric-normalised sum of the neighbours' messages; zero
    for a node without any.

    Shapes:
        messages: (N, K); returns (N, K).
    """
    if how == "mean":
        # Each edge (h, t) weighs 1 / d_h: the weighted sum is the mean over N(h).
        return spmm(graph, graph.degree[graph.row].reciprocal(), messages)
    if how == "symmetric":
        return spmm(graph, symmetric_weights(graph), messages)

    gathered = messages[graph.col]  # (E, K): the message each edge carries
    index = graph.row.unsqueeze(1).expand_as(gathered)
    empty = messages.new_zeros(messages.shape)
    return empty.scatter_reduce(0, index, gathered, "amax", include_self=False)


class GraphConvLayer(nn.Module):
    """One MMGCN layer of one modality: aggregation, then combination with IDs.

    Args:
        in_dim: width of the layer's input node representations.
        out_dim: D, the ID embedding width.
        config: the model's config (aggregation, combination, slope).
    """

    def __init__(self, in_dim: int, out_dim: int, config: MMGCNConfig) -> None:
        super().__init__()
        self.config = config
        self.message = nn.Linear(in_dim, in_dim, bias=False)
        self.own = nn.Linear(in_dim, out_dim)
        combined = in_dim + out_dim if config.combination == "concat" else in_dim
        self.combine = nn.Linear(combined, out_dim)
        if config.layer_init == "xavier":
            for linear in (self.message, self.own, self.combine):
                nn.init.xavier_normal_(linear.weight)

    def forward(self, graph: Graph, x: torch.Tensor, id_embedding: torch.Tensor):
        """Update every node from its neighbours and its ID embedding.

        Shapes:
            x: (N, in_dim); id_embedding: (N, D); returns (N, D).
        """
        slope = self.config.negative_slope
        messages = F.leaky_relu(self.message(x), slope)
        neighbours = aggregate(graph, messages, self.config.aggregation)
        own = F.leaky_relu(self.own(x), slope) + id_embedding

        if self.config.combination == "concat":
            combined = self.combine(torch.cat([neighbours, own], dim=1))
        else:
            combined = self.combine(neighbours) + own
        return F.leaky_relu(combined, slope)


class ModalityBranch(nn.Module):
    """One modality's feature projection, user preferences and layers.

    Shapes:
        features: (I, F_m) buffer; forward returns (N, D).
    """

    def __init__(
        self, features: torch.Tensor, num_users: int, config: MMGCNConfig
    ) -> None:
        super().__init__()
        self.register_buffer("features", features, persistent=False)
        self.project = nn.Linear(features.shape[1], config.latent_dim)
        self.preference = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(num_users, config.latent_dim))
        )
        dims = [config.latent_dim] + [config.embed_dim] * (config.num_layers - 1)
        self.layers = nn.ModuleList(
            GraphConvLayer(d, config.embed_dim, config) for d in dims
        )

    def forward(self, graph: Graph, id_embedding: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.preference, self.project(self.features)])
        x = row_normalize(x)
        for layer in self.layers:
            x = layer(graph, x, id_embedding)
        return x


class MMGCN(Recommender):
    """The Multi-modal Graph Convolution Network (see the module docstring).

    Args:
        data: the sizes, training graph and at least one item modality.
        config: the model's hyperparameters.
    """

    name = "mmgcn"
    config_class = MMGCNConfig

    def __init__(self, data: ModelData, config: MMGCNConfig) -> None:
        super().__init__(data, config)
        data.require_modalities("MMGCN")
        num_nodes = data.num_users + data.num_items
        self.id_embedding = id_embeddings(
            num_nodes, config.embed_dim, config.id_init_std
        )
        self.branches = nn.ModuleDict(
            {
                name: ModalityBranch(
                    torch.as_tensor(array, dtype=torch.float32),
                    data.num_users,
                    config,
                )
                for name, array in data.features.items()
            }
        )

    def modality_representations(self) -> dict[str, torch.Tensor]:
        """Per-modality (N, D) node representations, before fusion."""
        graph = self.graph
        return {
            name: branch(graph, self.id_embedding)
            for name, branch in self.branches.items()
        }

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-modality branch outputs fused by sum or mean.

        Shapes:
            returns (U, D) users and (I, D) items.
        """
        fused = torch.stack(list(self.modality_representations().values())).sum(0)
        if self.config.modality_fusion == "mean":
            fused = fused / len(self.branches)
        return fused.split([self.num_users, self.num_items])

    def parameter_groups(self, lr: float) -> list[dict]:
        """The ID embeddings at ``lr``, the branches at ``lr * modality_lr_scale``."""
        scaled = lr * self.config.modality_lr_scale
        return [
            {"params": [self.id_embedding], "lr": lr},
            {"params": list(self.branches.parameters()), "lr": scaled},
        ]

    def regularized(self, users, pos, neg) -> list[TableRows]:
        offset = self.num_users
        nodes = torch.cat([users, pos + offset, neg + offset])
        prefs = [(branch.preference, users) for branch in self.branches.values()]
        return [(self.id_embedding, nodes), *prefs]
