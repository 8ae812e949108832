"""Top-K recommendation from any recommender's representations.

Every model of the registry gives one representation per user and per item and
scores a pair by their inner product; nothing here depends on which model it is.
A ``Scorer`` computes the representations once (from the model's
``attribution``, whose parts also explain the scores, see ``mgat.explain``) and
then answers many queries: top-K lists for known users, chunk by chunk so that
the U x I score matrix is never held, scores of given pairs, top-K lists for new
users folded in from the items they chose, and rankings that include items
absent from training, represented from their features alone.

A user's training items are masked to -inf before the top K is taken. When
fewer than K items are left to recommend, the missing ranks hold the item
``NO_ITEM`` (-1) with score -inf.

Shapes: U users, I items (the model's, then I' new ones), B users in a chunk,
K the cut-off, D' the representation width.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from mgat.errors import ConfigError, DataError
from mgat.explain import Explanation, build_explanations, user_evidence
from mgat.models.base import Attribution
from mgat.saved import SavedModel, load_model

logger = logging.getLogger(__name__)

NO_ITEM = -1
"""Item index of a rank that could not be filled (every item was excluded)."""


class RecommendationBatch(NamedTuple):
    """Top-K lists of one chunk of users.

    Attributes:
        users: (B,) user indices.
        items: (B, K) item indices, best first (``NO_ITEM`` where unfilled).
        scores: (B, K) float32 scores (-inf where unfilled).
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray


class Scorer:
    """Representations computed once, with the id maps and the training mask.

    Build one with ``Scorer.from_saved``. It only reads its tensors after that,
    so many threads can query one scorer at the same time.

    Args:
        saved: the loaded model with its ids and training pairs.
        attribution: the model's ``attribution()``; its parts sum to the
            representations that are scored.
        item_ids: (I,) original item ids (default: the saved model's).
    """

    def __init__(
        self,
        saved: SavedModel,
        attribution: Attribution,
        item_ids: np.ndarray | None = None,
    ) -> None:
        self.saved = saved
        self.model = saved.model
        self.attribution = attribution
        self.user_ids = saved.user_ids
        self.item_ids = saved.item_ids if item_ids is None else item_ids
        parts = attribution.parts.values()
        self.user_rep = sum(user for user, _ in parts)
        self.item_rep = sum(item for _, item in parts)
        self.item_t = self.item_rep.t().contiguous()
        self.train = _train_matrix(saved.train, len(self.user_ids), self.num_items)
        self._item_positions = {value: i for i, value in enumerate(self.item_ids)}

    @classmethod
    def from_saved(cls, saved: SavedModel) -> Scorer:
        """Compute the model's representations (one forward pass) and wrap them."""
        return cls(saved, saved.model.attribution())

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        """I, including new items added with ``with_new_items``."""
        return len(self.item_ids)

    @property
    def parts(self) -> list[str]:
        """Names of the representation parts (modalities, or ``id``)."""
        return list(self.attribution.parts)

    def user_index(self, ids) -> np.ndarray:
        """Indices of original user ids; ``UnknownIdError`` for unknown ones."""
        return self.saved.user_index(ids)

    def item_index(self, ids) -> np.ndarray:
        """Indices of original item ids, new items included."""
        keys = [str(i) for i in np.atleast_1d(ids)]
        if all(key in self._item_positions for key in keys):
            return np.array([self._item_positions[k] for k in keys], dtype=np.int64)
        return self.saved.item_index(ids)  # raises, naming the unknown ids

    def with_new_items(self, ids: Sequence[str], features: dict) -> Scorer:
        """A scorer that also ranks items absent from training (cold start).

        Args:
            ids: (I',) original ids of the new items, unknown to the model.
            features: modality name to (I', F_m) features of the new items.

        Raises:
            DataError: for duplicate ids, ids the model already knows, or
                features that do not fit the model.
            ConfigError: when the model cannot represent unseen items.
        """
        ids = np.asarray([str(i) for i in ids])
        _check_new_ids(ids, self._item_positions)
        new_parts = self.model.new_item_parts(features)
        if any(len(part) != len(ids) for part in new_parts.values()):
            raise DataError(
                f"new items: {len(ids)} ids but features for "
                f"{len(next(iter(new_parts.values())))} items; give one feature "
                "row per id, in the same order."
            )
        parts = {
            name: (user, torch.cat([item, new_parts[name]]))
            for name, (user, item) in self.attribution.parts.items()
        }
        attribution = Attribution(
            parts, self.attribution.edge_weight, self.attribution.edge_gate
        )
        logger.info("added %d new items from their features", len(ids))
        return Scorer(self.saved, attribution, np.concatenate([self.item_ids, ids]))

    def recommend(
        self,
        users,
        k: int = 20,
        exclude_train: bool = True,
        exclude_items=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-K items for known users, in one chunk.

        Args:
            users: (B,) user indices.
            k: K, in [1, I].
            exclude_train: mask each user's training items.
            exclude_items: item indices to mask for every one of these users.

        Shapes:
            returns (B, K) item indices and (B, K) float32 scores, best first.
        """
        users = self._check_users(users)
        self._check_k(k)
        rows, cols = self._excluded(users, exclude_train, exclude_items)
        user_rep = self.user_rep[torch.as_tensor(users, device=self.user_rep.device)]
        return self._top_k(user_rep, k, rows, cols)

    def iter_recommend(
        self,
        users=None,
        k: int = 20,
        exclude_train: bool = True,
        exclude_items=None,
        batch_size: int = 1024,
    ) -> Iterator[RecommendationBatch]:
        """Top-K lists chunk by chunk; ``users=None`` means every user.

        Only one (B, I) block of scores exists at a time.
        """
        users = np.arange(self.num_users) if users is None else self._check_users(users)
        self._check_k(k)
        if batch_size < 1:
            raise ConfigError(f"batch_size: expected >= 1, got {batch_size}.")
        for start in range(0, len(users), batch_size):
            chunk = users[start : start + batch_size]
            items, scores = self.recommend(chunk, k, exclude_train, exclude_items)
            yield RecommendationBatch(chunk, items, scores)

    def score(self, users, items) -> np.ndarray:
        """(B,) float32 scores of (user, item) index pairs."""
        users = self._check_users(users)
        items = self._check_items(items)
        if len(users) != len(items):
            raise ConfigError(
                f"score: expected as many users as items, got {len(users)} users "
                f"and {len(items)} items."
            )
        device = self.user_rep.device
        u = self.user_rep[torch.as_tensor(users, device=device)]
        i = self.item_rep[torch.as_tensor(items, device=device)]
        return (u * i).sum(-1).cpu().numpy()

    def score_new_items(self, users, features: dict) -> np.ndarray:
        """(B, I') scores of items absent from training, from their features."""
        users = self._check_users(users)
        with torch.no_grad():
            new_rep = self.model.new_item_representations(features)
        user_rep = self.user_rep[torch.as_tensor(users, device=new_rep.device)]
        return (user_rep @ new_rep.t()).cpu().numpy()

    def recommend_new_users(
        self, item_lists: Sequence[Sequence[int]], k: int = 20, exclude_given=True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-K items for users unknown to the model, from the items they chose.

        Each new user is folded in by the model (``Recommender.fold_in_users``)
        without retraining.

        Args:
            item_lists: B sequences of item indices, one per new user.
            k: K, in [1, I].
            exclude_given: mask the items each new user gave.

        Shapes:
            returns (B, K) item indices and (B, K) float32 scores.
        """
        self._check_k(k)
        # Fold-in attends over trained items only, not items added from features.
        trained = self.model.num_items
        lists = [checked_indices(items, trained, "item") for items in item_lists]
        user_rep = self.model.fold_in_users(lists)
        rows = cols = np.empty(0, np.int64)
        if exclude_given:
            rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
            cols = np.concatenate(lists)
        return self._top_k(user_rep, k, rows, cols)

    def _top_k(self, user_rep, k, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """Top K of (B, D') users' scores, with entries (rows, cols) masked."""
        scores = user_rep @ self.item_t.to(user_rep.device)  # (B, I)
        if len(rows):
            device = scores.device
            masked = (
                torch.as_tensor(rows, device=device),
                torch.as_tensor(cols, device=device),
            )
            scores[masked] = float("-inf")
        values, items = torch.topk(scores, k, dim=1)
        items[torch.isneginf(values)] = NO_ITEM
        return items.cpu().numpy(), values.cpu().numpy()

    def _excluded(self, users, exclude_train, exclude_items):
        """(rows, cols) of the chunk's score entries to mask."""
        rows, cols = [], []
        if exclude_train:
            block = self.train[users].tocoo()
            rows.append(block.row)
            cols.append(block.col)
        if exclude_items is not None:
            items = self._check_items(exclude_items)
            rows.append(np.repeat(np.arange(len(users)), len(items)))
            cols.append(np.tile(items, len(users)))
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(rows), np.concatenate(cols)

    def _check_users(self, users) -> np.ndarray:
        return checked_indices(users, self.num_users, "user")

    def _check_items(self, items) -> np.ndarray:
        return checked_indices(items, self.num_items, "item")

    def _check_k(self, k: int) -> None:
        integer = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
        if not integer or not 1 <= k <= self.num_items:
            raise ConfigError(
                f"k: expected an integer in [1, {self.num_items}] (the number of "
                f"items), got {k!r}."
            )


def recommend(
    saved: SavedModel | Scorer,
    users,
    k: int = 20,
    exclude_train: bool = True,
    exclude_items=None,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-K items for the given users, computed chunk by chunk.

    Args:
        saved: a loaded model, or a ``Scorer`` built from one (reused as is).
        users: (B,) user indices (``SavedModel.user_index`` maps original ids).
        k: K, in [1, I].
        exclude_train: mask each user's training items to -inf.
        exclude_items: item indices to mask for every user.
        batch_size: users scored at a time.

    Shapes:
        returns (B, K) item indices and (B, K) float32 scores, best first.
    """
    batches = list(
        iter_recommend(saved, users, k, exclude_train, exclude_items, batch_size)
    )
    if not batches:
        return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
    items = np.concatenate([b.items for b in batches])
    return items, np.concatenate([b.scores for b in batches])


def iter_recommend(
    saved: SavedModel | Scorer,
    users=None,
    k: int = 20,
    exclude_train: bool = True,
    exclude_items=None,
    batch_size: int = 1024,
) -> Iterator[RecommendationBatch]:
    """Stream top-K lists chunk by chunk (``users=None``: every user)."""
    scorer = saved if isinstance(saved, Scorer) else Scorer.from_saved(saved)
    yield from scorer.iter_recommend(users, k, exclude_train, exclude_items, batch_size)


def explain(
    source: SavedModel | Scorer, user: int, items, top: int = 3
) -> list[Explanation]:
    """Explain the scores of ``items`` for a known ``user`` (see ``mgat.explain``).

    Each explanation gives every modality's share of the score (the shares sum
    to the score) and the user's training items that carried the most gated
    attention into the user's node in that modality.

    Args:
        source: a loaded model, or a ``Scorer`` built from one (reused as is;
            it knows any new items added to it).
        user: user index.
        items: (B,) item indices.
        top: evidence items per modality.

    Returns:
        One ``Explanation`` per item, in the order given.
    """
    scorer = source if isinstance(source, Scorer) else Scorer.from_saved(source)
    if top < 0:
        raise ConfigError(f"top: expected >= 0 evidence items, got {top}.")
    user = int(checked_indices(user, scorer.num_users, "user")[0])
    items = checked_indices(items, scorer.num_items, "item")

    parts = scorer.attribution.parts
    user_parts = {name: u[user] for name, (u, _) in parts.items()}
    item_parts = {name: i[torch.as_tensor(items)] for name, (_, i) in parts.items()}
    evidence = user_evidence(scorer.attribution, scorer.model.graph, user, top)
    return build_explanations(items, user_parts, item_parts, evidence)


def explain_new_user(source: SavedModel | Scorer, chosen, items) -> list[Explanation]:
    """Explain the scores of ``items`` for a new user folded in from ``chosen``.

    The shares come from the model's ``fold_in_parts``; there is no evidence,
    as the new user has no edges in the training graph.

    Args:
        source: a loaded model, or a ``Scorer`` built from one.
        chosen: indices of the trained items the new user interacted with.
        items: (B,) item indices to explain.
    """
    scorer = source if isinstance(source, Scorer) else Scorer.from_saved(source)
    chosen = checked_indices(chosen, scorer.model.num_items, "item")
    items = checked_indices(items, scorer.num_items, "item")
    folded = scorer.model.fold_in_parts([chosen])
    user_parts = {name: part[0] for name, part in folded.items()}
    parts = scorer.attribution.parts
    item_parts = {name: i[torch.as_tensor(items)] for name, (_, i) in parts.items()}
    return build_explanations(items, user_parts, item_parts, {})


def load_saved(path: str | Path, device: str = "cpu") -> SavedModel:
    """Load the model of a run directory (``RUN/model``) or a saved model dir."""
    path = Path(path)
    model_dir = path / "model"
    if not (path / "model.json").exists() and model_dir.is_dir():
        path = model_dir
    return load_model(path, device)


def load_new_items(
    directory: str | Path, modalities: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """New items' ids and features from a directory, for cold-start ranking.

    The directory holds ``items.txt`` (one new item id per line) and one
    ``<modality>.npy`` (I', F_m) array per modality of the model, rows in the
    order of ``items.txt``.

    Returns:
        (I',) ids and modality name to (I', F_m) float32 features.
    """
    directory = Path(directory)
    ids_file = directory / "items.txt"
    if not ids_file.is_file():
        raise DataError(
            f"{directory}: no items.txt. A new-items directory holds items.txt "
            "(one id per line) and <modality>.npy per modality "
            f"({', '.join(f'{m}.npy' for m in modalities)})."
        )
    ids = np.array([s for s in ids_file.read_text().splitlines() if s.strip()])
    features = {}
    for name in modalities:
        path = directory / f"{name}.npy"
        if not path.is_file():
            raise DataError(
                f"{directory}: no {name}.npy; the model needs features for every "
                f"modality it was trained on ({', '.join(modalities)})."
            )
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"{path}: not a readable .npy array ({err}).") from err
        if array.ndim != 2 or len(array) != len(ids):
            raise DataError(
                f"{path}: expected ({len(ids)}, F) features, one row per id in "
                f"items.txt, found shape {array.shape}."
            )
        features[name] = array.astype(np.float32)
    return ids, features


def _train_matrix(pairs: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    pairs = np.asarray(pairs).reshape(-1, 2)
    values = np.ones(len(pairs), dtype=np.bool_)
    shape = (num_users, num_items)
    return sp.csr_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=shape)


def checked_indices(values, size: int, kind: str) -> np.ndarray:
    """``values`` as a 1-D int64 index array, checked to lie in [0, size)."""
    array = np.atleast_1d(np.asarray(values))
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind not in "iu" or array.min() < 0 or array.max() >= size:
        raise ConfigError(
            f"expected {kind} indices in [0, {size}), got {array.tolist()[:5]}. "
            f"Map original ids with user_index/item_index first."
        )
    return array.astype(np.int64).reshape(-1)


def _check_new_ids(ids: np.ndarray, known: dict[str, int]) -> None:
    if len(ids) == 0:
        raise DataError("new items: expected at least one item id, got none.")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(
            f"new items: duplicate ids {unique[counts > 1][:5].tolist()}; every "
            "new item needs its own id."
        )
    clash = [i for i in ids if i in known]
    if clash:
        raise DataError(
            f"new items: ids {clash[:5]} are already items of the model. New "
            "items need ids the model does not know; to rescore known items, "
            "leave them out of the new items."
        )
