"""The contract every recommender in the library follows.

A model maps the training graph (and item features, if it uses them) to one
representation per user and per item; a user's score for an item is the inner
product of the two. The trainer, the metrics, recommendation and serving use only
this contract and never branch on a model's name.

Shapes: U users, I items, N = U + I nodes, B batch pairs, D' representation width.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mgat.errors import ConfigError
from mgat.graph import Graph

GRAPH_TENSORS = ("rowptr", "col", "row", "transpose", "degree")

#: (table, rows): the rows ``rows`` of the embedding parameter ``table``.
TableRows = tuple[torch.Tensor, torch.Tensor]


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

    def require_modalities(self, model: str) -> None:
        """Refuse, with the fix, to build a content model without item features."""
        if not self.features:
            raise ConfigError(
                f"{model} needs at least one item modality, and this dataset has "
                "none. Add feature arrays (mgat data import --feature NAME=PATH) or "
                "use an ID-only model such as lightgcn or bprmf."
            )


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

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups; the default is one group at ``lr``."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def regularized(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> list[TableRows]:
        """The batch's free embeddings that the L2 term penalises (default: none).

        Returns:
            (table, rows) pairs: the rows ``rows`` (repeats count again) of the
            (n, D) embedding parameter ``table``.
        """
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
        # Under mixed precision the representations may come in bfloat16; the
        # scores and the loss are taken in float32.
        user_rep, item_rep = (rep.float() for rep in self.representations())
        # s(u, i+) - s(u, i-) = <u, i+ - i->: one product instead of two. Rows
        # are gathered with index_select, whose backward is one index_add.
        u = user_rep.index_select(0, users)  # (B, D')
        difference = item_rep.index_select(0, pos) - item_rep.index_select(0, neg)
        ranking = -F.logsigmoid((u * difference).sum(-1)).mean()

        regularization = ranking.new_zeros(())
        if reg_weight:
            terms = self.regularized(users, pos, neg)
            squares = sum(squared_rows(table, rows) for table, rows in terms)
            regularization = reg_weight * 0.5 * squares / len(users)
        return LossParts(ranking + regularization, ranking, regularization)

    @torch.no_grad()
    def embed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations for scoring, computed in eval mode without gradients."""
        was_training = self.training
        self.eval()
        try:
            users, items = self.representations()
        finally:
            self.train(was_training)
        # A model may return its parameters themselves, which require grad even
        # under no_grad; scoring code expects plain tensors.
        return users.detach(), items.detach()

    # Explanation and cold start. The defaults below serve any model whose only
    # knowledge of an item is its learned representation; content models
    # override them.

    @contextmanager
    def evaluating(self):
        """Eval mode without gradients inside the block; the mode is restored."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield self
        finally:
            self.train(was_training)

    @torch.no_grad()
    def attribution(self) -> Attribution:
        """Additive parts of the representations and first-layer attention.

        The default is one part, ``"id"``, holding the whole representations,
        and no attention.
        """
        user_rep, item_rep = self.embed()
        return Attribution({"id": (user_rep, item_rep)}, {}, {})

    def new_item_parts(self, features: dict) -> dict[str, torch.Tensor]:
        """Parts of the representations of items absent from training.

        Args:
            features: modality name to (I', F_m) features of the new items.

        Returns:
            Part name to (I', D'); the parts sum to the representations.

        Raises:
            ConfigError: always here: the default model knows an item only by
                its learned embedding.
        """
        raise ConfigError(
            f"model {self.name!r} cannot score items it was not trained on: it "
            "learns one embedding per training item and does not read item "
            "features for unseen items. Use a content model such as mgat for "
            "new items, or retrain with them."
        )

    def new_item_representations(self, features: dict) -> torch.Tensor:
        """(I', D') representations of items absent from training (cold start)."""
        return sum(self.new_item_parts(features).values())

    @torch.no_grad()
    def fold_in_parts(self, item_lists) -> dict[str, torch.Tensor]:
        """Parts of the representations of new users, from items they chose.

        The default folds a user in as the mean representation of their items:
        with inner-product scores this ranks items by their similarity to what
        the user picked. No parameter changes and nothing is retrained.

        Args:
            item_lists: B sequences of training item indices, one per new user.

        Returns:
            Part name to (B, D'); the parts sum to the representations.
        """
        check_item_lists(item_lists, self.num_items)
        _, item_rep = self.embed()
        means = [item_rep[torch.as_tensor(items)].mean(0) for items in item_lists]
        return {"id": torch.stack(means)}

    def fold_in_users(self, item_lists) -> torch.Tensor:
        """(B, D') representations of new users from their items (fold-in)."""
        return sum(self.fold_in_parts(item_lists).values())


@dataclass
class Attribution:
    """What an explanation is built from, computed once per model state.

    Attributes:
        parts: part name (a modality, or ``"id"``) to (U, D') user and (I, D')
            item parts; summed over the parts they give the representations.
        edge_weight: part name to (E,) weight of each graph edge (h <- t) in
            the part's first layer (empty for models without attention).
        edge_gate: part name to (E,) gate of each graph edge, where a model has
            gates (may be empty).
    """

    parts: dict[str, tuple[torch.Tensor, torch.Tensor]]
    edge_weight: dict[str, torch.Tensor]
    edge_gate: dict[str, torch.Tensor]


def squared_rows(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The sum of ``||table[r]||^2`` over ``rows``, repeats counted.

    Where the rows are many against the table (a batch's users and items are
    often more rows than the graph has nodes), each row's square is weighted by
    how often it is taken: one pass over the table and a dense gradient, where
    gathering the rows would copy each, and its backward pass would scatter them
    back one by one (at 1.9 million rows of a 700,000-row table, 1.9 s against
    0.4 s, 2 threads). A few rows are gathered.

    Shapes:
        table: (n, D) or (n,); rows: (R,) indices below n; returns a scalar.
    """
    if 4 * len(rows) < len(table):
        return table[rows].pow(2).sum()
    counts = torch.bincount(rows, minlength=len(table)).to(table.dtype)
    return counts @ table.pow(2).reshape(len(table), -1).sum(1)


def id_embeddings(num_nodes: int, dim: int, std: float | None) -> nn.Parameter:
    """(num_nodes, dim) ID embeddings drawn from N(0, std^2), or Xavier-normal
    (standard deviation sqrt(2 / (num_nodes + dim))) where ``std`` is None."""
    ids = torch.empty(num_nodes, dim)
    if std is None:
        nn.init.xavier_normal_(ids)
    else:
        nn.init.normal_(ids, std=std)
    return nn.Parameter(ids)


def check_item_lists(item_lists, num_items: int) -> None:
    """Reject an empty list of new users, or a user with no or unknown items."""
    if len(item_lists) == 0:
        raise ConfigError("fold-in: expected at least one new user, got none.")
    for number, items in enumerate(item_lists):
        items = np.asarray(items)
        if items.size == 0:
            raise ConfigError(
                f"fold-in: new user {number} has no items; a user is folded in "
                "from at least one item they interacted with."
            )
        if items.dtype.kind not in "iu" or items.min() < 0 or items.max() >= num_items:
            raise ConfigError(
                f"fold-in: new user {number}: expected item indices in "
                f"[0, {num_items}), got {items.tolist()[:5]}. Map original ids "
                "with SavedModel.item_index first."
            )
