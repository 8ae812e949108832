"""The contract every recommender in the library follows.

A model maps the training graph (and item features, if it uses them) to one
representation per user and per item; a user's score for an item is the inner
product of the two. The trainer, the metrics, recommendation and serving use only
this contract and never branch on a model's name.

Shapes: U users, I items, N = U + I nodes, B batch pairs, D' representation width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mgat.graph import Graph

GRAPH_TENSORS = ("rowptr", "col", "row", "transpose", "degree")


@dataclass
class ModelData:
    """What a model is built from: sizes, the training graph and item features.

    Attributes:
        num_users: U.
        num_items: I.
        train: (E, 2) int64 training (user, item) index pairs.
        features: modality name to (I, F_m) float32 features.
    """

    num_users: int
    num_items: int
    train: np.ndarray
    features: dict[str, np.ndarray]

    @classmethod
    def from_dataset(cls, dataset) -> ModelData:
        return cls(
            dataset.num_users, dataset.num_items, dataset.train, dict(dataset.features)
        )

    def graph(self) -> Graph:
        return Graph.from_interactions(self.train, self.num_users, self.num_items)


@dataclass
class LossParts:
    """A training loss and its terms (scalars)."""

    total: torch.Tensor
    ranking: torch.Tensor
    regularization: torch.Tensor


class Recommender(nn.Module):
    """Base class: graph buffers, BPR loss and inner-product scoring.

    Subclasses set ``name`` and ``config_class``, build their parameters in
    ``__init__`` and implement ``representations``; they may override
    ``regularized`` to choose which batch embeddings the L2 term covers.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, data: ModelData, config) -> None:
        super().__init__()
        self.config = config
        self.num_users = data.num_users
        self.num_items = data.num_items
        graph = data.graph()
        for key in GRAPH_TENSORS:
            self.register_buffer(f"graph_{key}", getattr(graph, key), persistent=False)

    @property
    def graph(self) -> Graph:
        tensors = (getattr(self, f"graph_{key}") for key in GRAPH_TENSORS)
        return Graph(self.num_users, self.num_items, *tensors)

    @property
    def device(self) -> torch.device:
        return self.graph_col.device

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, D') user and (I, D') item representations, differentiable."""
        raise NotImplementedError

    def regularized(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> list[torch.Tensor]:
        """The batch's free embeddings that the L2 term penalises (default: none)."""
        return []

    def loss(
        self,
        users: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor,
        reg_weight: float = 0.0,
    ) -> LossParts:
        """BPR loss with one negative per positive, plus L2 on batch embeddings.

            L = -mean log sigmoid(s(u, i+) - s(u, i-)) + reg / 2 * sum ||e||^2 / B

        (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit
        Feedback", UAI 2009).

        Shapes:
            users, pos, neg: (B,) indices; returns scalars.
        """
        user_rep, item_rep = self.representations()
        u = user_rep[users]
        pos_scores = (u * item_rep[pos]).sum(-1)
        neg_scores = (u * item_rep[neg]).sum(-1)
        ranking = -F.logsigmoid(pos_scores - neg_scores).mean()

        regularization = ranking.new_zeros(())
        if reg_weight:
            squares = sum(e.pow(2).sum() for e in self.regularized(users, pos, neg))
            regularization = reg_weight * 0.5 * squares / len(users)
        return LossParts(ranking + regularization, ranking, regularization)

    @torch.no_grad()
    def embed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations for scoring, computed in eval mode without gradients."""
        was_training = self.training
        self.eval()
        try:
            return self.representations()
        finally:
            self.train(was_training)
