"""Tiny synthetic graphs shared by the model tests.

``tiny_data`` is a random graph with two modalities and one cold item, for the
contract tests. ``planted`` has a known answer: two user groups, each liking
its own item cluster, with the cluster visible in the item features; a model
that learns anything should rank a user's unseen own-cluster items first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgat.models import ModelData, Recommender

TINY_USERS, TINY_ITEMS = 12, 10


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one CPU thread, restored afterwards."""
    # The graphs are tiny: on a busy machine a thread pool waits more than it helps.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_data() -> ModelData:
    """12 users, 10 items (the last without any interaction), 2 modalities."""
    rng = np.random.default_rng(0)
    pairs = [
        (user, int(item))
        for user in range(TINY_USERS)
        for item in rng.choice(TINY_ITEMS - 1, size=3, replace=False)
    ]
    features = {
        "visual": rng.normal(size=(TINY_ITEMS, 6)).astype(np.float32),
        "acoustic": rng.normal(size=(TINY_ITEMS, 4)).astype(np.float32),
    }
    return ModelData(TINY_USERS, TINY_ITEMS, np.array(pairs, np.int64), features)


@dataclass
class Planted:
    """Two groups of users, each liking its own cluster of items.

    Items ``0..warm-1`` are warm (half per cluster); the ``cold`` items after
    them have no interaction but features that reveal their cluster.

    Attributes:
        data: the model input (training pairs and features).
        user_group: (U,) cluster each user likes.
        item_cluster: (I,) cluster of each item.
        train: (U, I) bool, the training interactions.
        num_warm: items that have interactions.
    """

    data: ModelData
    user_group: np.ndarray
    item_cluster: np.ndarray
    train: np.ndarray
    num_warm: int

    def fit(self, model: Recommender, steps: int = 150, lr: float = 0.05) -> None:
        """Full-batch BPR with a fixed seed and uniform negatives among warm items.

        Cold items are never sampled, so their own (ID) parameters keep their
        initial values and only what the model reads from features can rank them.
        """
        generator = torch.Generator().manual_seed(0)
        pairs = torch.as_tensor(self.data.train)
        users, pos = pairs[:, 0], pairs[:, 1]
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(steps):
            neg = torch.randint(self.num_warm, pos.shape, generator=generator)
            loss = model.loss(users, pos, neg, reg_weight=1e-4).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def scores(self, model: Recommender) -> np.ndarray:
        """(U, I) scores of every user for every item."""
        users, items = model.embed()
        return (users @ items.T).numpy()

    def warm_recall(self, model: Recommender) -> float:
        """Mean recall of unseen own-cluster warm items in a top list as long.

        A perfect ranking scores 1; a random one about the share of own-cluster
        items among the unseen warm items (here a third).
        """
        scores = self.scores(model)[:, : self.num_warm]
        scores[self.train[:, : self.num_warm]] = -np.inf
        wanted = self.item_cluster[None, : self.num_warm] == self.user_group[:, None]
        wanted &= ~self.train[:, : self.num_warm]
        recalls = []
        for user in range(len(scores)):
            k = wanted[user].sum()
            top = np.argsort(-scores[user])[:k]
            recalls.append(wanted[user, top].mean())
        return float(np.mean(recalls))

    def cold_auc(self, model: Recommender) -> float:
        """How often a user's own-cluster cold item outscores another cold item."""
        scores = self.scores(model)[:, self.num_warm :]
        own = self.item_cluster[None, self.num_warm :] == self.user_group[:, None]
        wins = [
            (scores[u, own[u]][:, None] > scores[u, ~own[u]][None, :]).mean()
            for u in range(len(scores))
        ]
        return float(np.mean(wins))


@pytest.fixture
def planted() -> Planted:
    """20 users in 2 groups; 24 warm items in 2 clusters, then 8 cold items."""
    rng = np.random.default_rng(1)
    num_users, warm, cold, per_user = 20, 24, 8, 6
    user_group = np.arange(num_users) % 2
    item_cluster = np.concatenate([np.arange(warm) % 2, np.arange(cold) % 2])

    pairs = []
    for user, group in enumerate(user_group):
        liked = np.flatnonzero(item_cluster[:warm] == group)
        pairs += [(user, int(i)) for i in rng.choice(liked, per_user, replace=False)]
    pairs = np.array(pairs, np.int64)
    train = np.zeros((num_users, warm + cold), dtype=bool)
    train[pairs[:, 0], pairs[:, 1]] = True

    signal = F.one_hot(torch.as_tensor(item_cluster), 2).numpy()
    features = {
        "visual": np.hstack([signal, rng.normal(size=(warm + cold, 3)) * 0.3]),
        "acoustic": rng.normal(size=(warm + cold, 3)),
    }
    features = {m: f.astype(np.float32) for m, f in features.items()}
    data = ModelData(num_users, warm + cold, pairs, features)
    return Planted(data, user_group, item_cluster, train, warm)
