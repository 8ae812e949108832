"""Uniform negative sampling over the items a user has not interacted with.

Shapes: B pairs in a batch, U users, I items.
"""

from __future__ import annotations

import numpy as np
import torch

from mgat.errors import DataError


class NegativeSampler:
    """Draws, for each user of a batch, items outside the user's training items.

    Sampling is rejection-based and fully vectorised: draw uniform items for the
    whole batch, look the (user, item) keys up in the sorted training keys with a
    binary search, and redraw only the rejected entries. With training densities
    far below one, a redraw round almost never has more than a few entries.

    Items with no training interaction are never positives. Drawn as negatives
    (``items="all"``), they are only ever pushed down, and every model learns to
    rank them last whatever their content. ``items="seen"`` draws negatives among
    the items with at least one training interaction, which leaves the score of
    the others to what the model infers for them (their content features).

    Args:
        train: (E, 2) int array of training (user, item) index pairs.
        num_items: I, the number of items.
        generator: the random generator; pass a seeded one for reproducibility.
        items: ``all`` or ``seen``, the items negatives are drawn from.
    """

    def __init__(
        self,
        train: np.ndarray,
        num_items: int,
        generator: torch.Generator | None = None,
        items: str = "all",
    ) -> None:
        pairs = torch.as_tensor(np.asarray(train), dtype=torch.long)
        self.num_items = int(num_items)
        self.keys = torch.unique(pairs[:, 0] * self.num_items + pairs[:, 1])  # sorted
        self.generator = generator or torch.Generator().manual_seed(0)
        degree = torch.bincount(pairs[:, 0])
        most = int(degree.max()) if len(degree) else 0
        self.candidates = self._candidates(pairs, items, most)
        if most >= self.num_items:
            user = int(degree.argmax())
            raise DataError(
                f"user index {user} interacted with all {self.num_items} items, so it "
                "has no negative item to sample. Remove such users (k-core filtering "
                "keeps them) or add items."
            )

    def _candidates(
        self, pairs: torch.Tensor, items: str, most: int
    ) -> torch.Tensor | None:
        """(C,) the items negatives are drawn from; None: all of them.

        ``most`` is the largest number of training items of one user.
        """
        if items == "all":
            return None
        if items != "seen":
            raise DataError(f"negative items: expected 'all' or 'seen', got {items!r}.")
        seen = torch.unique(pairs[:, 1])
        if most and most >= len(seen):
            raise DataError(
                "a user interacted with every item seen in training, so it has no "
                "negative among them. Draw negatives from all items "
                "(negative_items=all) or remove such users."
            )
        return seen

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B,) bool: whether each (user, item) pair is a training interaction."""
        keys = users * self.num_items + items
        slot = torch.searchsorted(self.keys, keys).clamp_(max=len(self.keys) - 1)
        return self.keys[slot] == keys

    def sample(self, users: torch.Tensor, num: int = 1) -> torch.Tensor:
        """(B, num) negative items for users of shape (B,), or (B,) when num == 1."""
        users = users.to(torch.long).reshape(-1, 1).expand(-1, num).reshape(-1)
        items = self._draw(len(users))
        rejected = self.is_positive(users, items).nonzero().squeeze(1)
        while len(rejected):
            items[rejected] = self._draw(len(rejected))
            still = self.is_positive(users[rejected], items[rejected])
            rejected = rejected[still]
        return items if num == 1 else items.view(-1, num)

    def _draw(self, n: int) -> torch.Tensor:
        if self.candidates is None:
            return torch.randint(self.num_items, (n,), generator=self.generator)
        slots = torch.randint(len(self.candidates), (n,), generator=self.generator)
        return self.candidates[slots]
