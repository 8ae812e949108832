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

    TODO: items with no training interaction are drawn as negatives and never as
    positives, so every model learns to rank them last (cold-item recall is 0 on
    TikTok for all models but VBPR, docs/benchmarks/tiktok/cold_items.md). An
    option to draw negatives only among items seen in training would leave their
    score to the content features.

    Args:
        train: (E, 2) int array of training (user, item) index pairs.
        num_items: I, the number of items.
        generator: the random generator; pass a seeded one for reproducibility.
    """

    def __init__(
        self,
        train: np.ndarray,
        num_items: int,
        generator: torch.Generator | None = None,
    ) -> None:
        pairs = torch.as_tensor(np.asarray(train), dtype=torch.long)
        self.num_items = int(num_items)
        self.keys = torch.unique(pairs[:, 0] * self.num_items + pairs[:, 1])  # sorted
        self.generator = generator or torch.Generator().manual_seed(0)
        degree = torch.bincount(pairs[:, 0])
        if len(degree) and int(degree.max()) >= self.num_items:
            user = int(degree.argmax())
            raise DataError(
                f"user index {user} interacted with all {self.num_items} items, so it "
                "has no negative item to sample. Remove such users (k-core filtering "
                "keeps them) or add items."
            )

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
        return torch.randint(self.num_items, (n,), generator=self.generator)
