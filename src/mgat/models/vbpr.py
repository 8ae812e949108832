"""VBPR: matrix factorisation extended with a linear map of item content.

He, McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit
Feedback", AAAI 2016.

The score of user u for item i is

    s(u, i) = beta_i + <gamma_u, gamma_i> + <theta_u, E f_i> + <beta', f_i>

with free ID factors gamma_u, gamma_i (width D), a user's content preference
theta_u (width D_c), an item bias beta_i, a learned projection E (D_c x F) of the
item's content features f_i and a content bias beta' (F,). The paper's global and
user biases cancel in BPR's score differences and are left out.

The paper uses one visual feature vector; here f_i concatenates every modality
of the dataset, each optionally rescaled first. To keep the library's contract
(score = inner product of one user and one item representation), the terms are
stacked into extended representations

    user: [gamma_u || theta_u || 1]        item: [gamma_i || E f_i || b_i]

with b_i = beta_i + <beta', f_i>, so <user, item> is exactly s(u, i).

Only the batch's free embeddings (gamma, theta, beta_i) enter the L2 term; the
shared E and beta' are regularised by the trainer's weight decay when it is set.

Shapes: U users, I items, D ID width, D_c content width, F total feature width
(the sum of the modalities' widths F_m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from mgat.errors import ConfigError
from mgat.models.base import ModelData, Recommender, TableRows

Scaling = Literal["none", "l2", "standardize"]


@dataclass
class VBPRConfig:
    """Hyperparameters of VBPR.

    Args:
        embed_dim: D, the width of the ID factors gamma.
        content_dim: D_c, the width of the projected content E f_i and of theta.
        feature_scaling: how each modality is rescaled before concatenation:
            ``l2`` (each item's row to unit norm), ``standardize`` (each column
            to zero mean and unit variance over the items) or ``none``. On the
            bundled TikTok set ``l2`` validated best: standardised features give
            the content term a large initial scale and it overfits.
        item_bias: learn the item bias beta_i.
        init_std: standard deviation of the normal initial embeddings.
    """

    embed_dim: int = 64
    content_dim: int = 64
    feature_scaling: Scaling = "l2"
    item_bias: bool = True
    init_std: float = 0.1

    def validate(self) -> None:
        if self.embed_dim < 1 or self.content_dim < 1:
            raise ConfigError(
                "VBPRConfig: expected embed_dim and content_dim >= 1, got "
                f"{self.embed_dim} and {self.content_dim}."
            )
        if self.init_std <= 0:
            raise ConfigError(
                f"VBPRConfig.init_std: expected > 0, got {self.init_std}."
            )


def scale_features(features: torch.Tensor, scaling: Scaling) -> torch.Tensor:
    """(I, F_m) features rescaled per ``scaling`` (see ``VBPRConfig``)."""
    if scaling == "l2":
        return nn.functional.normalize(features, dim=-1)
    if scaling == "standardize":
        # A constant column carries nothing: keep it at zero instead of dividing by 0.
        std = features.std(0, unbiased=False).clamp_min(1e-8)
        return (features - features.mean(0)) / std
    return features


def content_features(data: ModelData, scaling: Scaling) -> torch.Tensor:
    """(I, F) every modality rescaled, then concatenated in the dataset's order."""
    arrays = [torch.as_tensor(a, dtype=torch.float32) for a in data.features.values()]
    return torch.cat([scale_features(a, scaling) for a in arrays], dim=1)


def normal_parameter(rows: int, cols: int, std: float) -> nn.Parameter:
    """A (rows, cols) parameter drawn from N(0, std^2)."""
    return nn.Parameter(torch.randn(rows, cols) * std)


class VBPR(Recommender):
    """Visual BPR over the concatenated modalities (see the module docstring).

    Args:
        data: the sizes, training graph and at least one item modality.
        config: the model's hyperparameters.
    """

    name = "vbpr"
    config_class = VBPRConfig

    def __init__(self, data: ModelData, config: VBPRConfig) -> None:
        super().__init__(data, config)
        data.require_modalities("VBPR")
        features = content_features(data, config.feature_scaling)
        self.register_buffer("features", features, persistent=False)

        dim, content_dim = config.embed_dim, config.content_dim
        self.user_factors = normal_parameter(data.num_users, dim, config.init_std)
        self.user_content = normal_parameter(
            data.num_users, content_dim, config.init_std
        )
        self.item_factors = normal_parameter(data.num_items, dim, config.init_std)
        self.projection = nn.Linear(features.shape[1], content_dim, bias=False)
        self.content_bias = nn.Parameter(torch.zeros(features.shape[1]))
        if config.item_bias:
            self.item_bias = nn.Parameter(torch.zeros(data.num_items))

    def item_biases(self) -> torch.Tensor:
        """(I,) b_i = beta_i + <beta', f_i>."""
        bias = self.features @ self.content_bias
        if self.config.item_bias:
            bias = bias + self.item_bias
        return bias

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Extended representations whose inner product is the VBPR score.

        Shapes:
            returns (U, D + D_c + 1) users and (I, D + D_c + 1) items.
        """
        ones = self.user_factors.new_ones(self.num_users, 1)
        users = torch.cat([self.user_factors, self.user_content, ones], dim=1)

        content = self.projection(self.features)  # (I, D_c)
        bias = self.item_biases().unsqueeze(1)
        items = torch.cat([self.item_factors, content, bias], dim=1)
        return users, items

    def regularized(self, users, pos, neg) -> list[TableRows]:
        items = torch.cat([pos, neg])
        terms = [
            (self.user_factors, users),
            (self.user_content, users),
            (self.item_factors, items),
        ]
        if self.config.item_bias:
            terms.append((self.item_bias, items))
        return terms
