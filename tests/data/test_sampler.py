"""Negative sampling: never a training positive, every other item reachable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgat.data import NegativeSampler
from mgat.errors import DataError

NUM_USERS, NUM_ITEMS = 5, 12


@pytest.fixture
def train() -> np.ndarray:
    """Dense training pairs (half of every user's items) so rejections happen."""
    rng = np.random.default_rng(0)
    return np.array(
        [
            (user, int(item))
            for user in range(NUM_USERS)
            for item in rng.permutation(NUM_ITEMS)[: NUM_ITEMS // 2 + user]
        ]
    )


def positives(train: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, train.tolist()))


def test_never_samples_a_training_positive(train):
    sampler = NegativeSampler(train, NUM_ITEMS, torch.Generator().manual_seed(1))
    users = torch.arange(NUM_USERS).repeat(2000)

    items = sampler.sample(users)
    drawn = set(zip(users.tolist(), items.tolist(), strict=True))
    assert not drawn & positives(train)
    assert not sampler.is_positive(users, items).any()


def test_covers_every_non_positive_item(train):
    sampler = NegativeSampler(train, NUM_ITEMS, torch.Generator().manual_seed(2))
    users = torch.arange(NUM_USERS).repeat(1000)

    drawn = set(zip(users.tolist(), sampler.sample(users).tolist(), strict=True))
    everything = {(u, i) for u in range(NUM_USERS) for i in range(NUM_ITEMS)}
    assert drawn == everything - positives(train)


def test_several_negatives_per_user(train):
    sampler = NegativeSampler(train, NUM_ITEMS)
    users = torch.tensor([0, 3, 4])
    items = sampler.sample(users, num=50)
    assert items.shape == (3, 50)
    repeated = users.repeat_interleave(50)
    assert not sampler.is_positive(repeated, items.reshape(-1)).any()


def test_reproducible_with_a_seeded_generator(train):
    users = torch.arange(NUM_USERS).repeat(100)

    def draw(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return NegativeSampler(train, NUM_ITEMS, generator).sample(users)

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_is_positive_marks_exactly_the_training_pairs(train):
    sampler = NegativeSampler(train, NUM_ITEMS)
    users, items = np.divmod(np.arange(NUM_USERS * NUM_ITEMS), NUM_ITEMS)
    flags = sampler.is_positive(torch.as_tensor(users), torch.as_tensor(items))
    expected = [(u, i) in positives(train) for u, i in zip(users, items, strict=True)]
    assert flags.tolist() == expected


def test_user_with_every_item_has_no_negative():
    train = np.array([(0, i) for i in range(4)] + [(1, 0)])
    with pytest.raises(DataError, match="user index 0 interacted with all 4 items"):
        NegativeSampler(train, 4)


def test_seen_negatives_skip_items_without_training_interactions(train):
    unseen = {3, 7}
    kept = train[~np.isin(train[:, 1], list(unseen))]
    sampler = NegativeSampler(kept, NUM_ITEMS, torch.Generator().manual_seed(3), "seen")
    items = sampler.sample(torch.arange(NUM_USERS).repeat(2000))

    assert not set(items.tolist()) & unseen
    held = positives(kept)
    reachable = {
        item
        for item in np.unique(kept[:, 1]).tolist()
        if any((user, item) not in held for user in range(NUM_USERS))
    }
    assert set(items.tolist()) == reachable
    everything = NegativeSampler(kept, NUM_ITEMS, torch.Generator().manual_seed(3))
    assert unseen <= set(
        everything.sample(torch.arange(NUM_USERS).repeat(2000)).tolist()
    )


def test_seen_negatives_refuse_a_user_who_saw_every_seen_item():
    train = np.array([(0, 0), (0, 1), (1, 0)])
    with pytest.raises(DataError, match="negative_items=all"):
        NegativeSampler(train, 5, items="seen")
    with pytest.raises(DataError, match="'all' or 'seen'"):
        NegativeSampler(train, 5, items="popular")
