"""Ranking metrics under the two evaluation protocols: full ranking and sampled.

Full ranking scores every item for every evaluated user, sets the items the user
met in the excluded splits (training, and validation at test time) to -inf and
keeps the top K on the fly, one chunk of users at a time: the U x I score matrix
is never held. The sampled protocol of the MGAT and MMGCN papers ranks each user's
held-out positives among a fixed number of uniformly drawn items the user never
interacted with.

Both protocols average per-user values over the users with at least one target
item. Metric keys are ``f"{metric}@{k}"``, e.g. ``"recall@20"``.

Shapes: U users, I items, B users in a chunk, K a cut-off (Kmax the largest),
C sampled negatives per user, P the most positives of one user in a chunk.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import scipy.sparse as sp
import torch

from mgat.errors import ConfigError

logger = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""(B,) user indices -> (B, I) scores of every item."""

PairScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(B,) user indices and (B, C) item indices -> (B, C) scores of those items."""

FULL_METRICS = ("recall", "ndcg", "precision", "hit", "map")
SAMPLED_METRICS = ("recall", "ndcg", "precision", "hit", "ndcg_bypos")
_TABLE_ORDER = ("recall", "ndcg", "ndcg_bypos", "precision", "hit", "map")


@dataclass(frozen=True)
class UserMetrics:
    """The per-user values behind the averages of :func:`evaluate_full`.

    Attributes:
        users: (U_eval,) int64 indices of the evaluated users, in evaluation order.
        values: metric key (e.g. ``"recall@20"``) -> (U_eval,) float64 values
            aligned with ``users``; each reported average is the mean of its array.
    """

    users: np.ndarray
    values: dict[str, np.ndarray]


@overload
def evaluate_full(
    score_fn: ScoreFn,
    targets: sp.spmatrix,
    exclude: Sequence[sp.spmatrix] = ...,
    ks: Sequence[int] = ...,
    metrics: Sequence[str] = ...,
    batch_size: int = ...,
    users: np.ndarray | None = ...,
    per_user: Literal[False] = ...,
) -> dict[str, float]: ...


@overload
def evaluate_full(
    score_fn: ScoreFn,
    targets: sp.spmatrix,
    exclude: Sequence[sp.spmatrix] = ...,
    ks: Sequence[int] = ...,
    metrics: Sequence[str] = ...,
    batch_size: int = ...,
    users: np.ndarray | None = ...,
    *,
    per_user: Literal[True],
) -> tuple[dict[str, float], UserMetrics]: ...


def evaluate_full(
    score_fn: ScoreFn,
    targets: sp.spmatrix,
    exclude: Sequence[sp.spmatrix] = (),
    ks: Sequence[int] = (10, 20, 50),
    metrics: Sequence[str] = FULL_METRICS,
    batch_size: int = 1024,
    users: np.ndarray | None = None,
    per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], UserMetrics]:
    """Full-ranking metrics: every item is a candidate, seen items are masked.

    For a user u with target items T_u and the ranked list after masking, with
    hit_r = 1 when the item at rank r is a target and n_u = min(|T_u|, K):

        Recall@K = sum_{r<=K} hit_r / |T_u|        Precision@K = sum hit_r / K
        NDCG@K = DCG / IDCG, DCG = sum hit_r / log2(r + 1), IDCG over n_u hits
        HitRate@K = 1 if any hit_r else 0
        MAP@K = (1 / n_u) * sum_{r<=K} hit_r * Precision@r

    Averages run over the users with at least one target. A target that is also
    in an excluded split is masked like any excluded item: it still counts in
    |T_u| but can never be a hit.

    Ties: among equal scores the order is the one ``torch.topk`` returns. It is
    deterministic on CPU for the same input, but it is not "lowest index first",
    so a tie across the cut-off may put either item inside. Continuous model
    scores make ties vanishingly rare.

    Shapes:
        score_fn: (B,) int64 user indices on CPU -> (B, I) float scores on any
            device; the returned tensor is never modified.
        targets: (U, I) sparse, the held-out items; stored nonzeros are targets.
        exclude: each (U, I) sparse; the union of their rows is masked to -inf.

    Args:
        score_fn: scores all items for a chunk of users.
        targets: the held-out interactions to find (validation or test).
        exclude: the splits whose items must not be recommended again, e.g.
            ``[train]`` for validation and ``[train, valid]`` for test.
        ks: the cut-offs K, each >= 1. Defaults to (10, 20, 50).
        metrics: names among ``FULL_METRICS``. Defaults to all of them.
        batch_size: users scored at once; bounds memory at about B x I floats.
        users: optional user indices to restrict to; those without targets are
            still left out. Defaults to every user with a target.
        per_user: also return the per-user values.

    Returns:
        ``{f"{metric}@{k}": mean}`` in the order of ``metrics`` then ``ks``; with
        ``per_user=True``, the pair ``(that dict, UserMetrics)``.

    Raises:
        ConfigError: an unknown metric, a cut-off below 1, mismatched matrix
            shapes, a score tensor of the wrong shape or with NaN, or no user
            with a target to evaluate.
    """
    ks = _check_ks(ks)
    metrics = _check_names(metrics, FULL_METRICS)
    _check_positive_int(batch_size, "batch_size")
    target, excluded = _binary_splits(targets, exclude)
    eval_users = _users_with_targets(target, users)
    num_pos = np.diff(target.indptr)
    values = {f"{m}@{k}": np.empty(len(eval_users)) for m in metrics for k in ks}

    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(eval_users), batch_size):
            chunk = eval_users[start : start + batch_size]
            hits = _top_hits(score_fn, chunk, target, excluded, max(ks))
            chunk_pos = torch.from_numpy(num_pos[chunk])
            for key, value in _full_metrics(hits, chunk_pos, ks, metrics).items():
                values[key][start : start + len(chunk)] = value
    logger.debug(
        "full ranking of %d users over %d items in %.3fs",
        len(eval_users),
        target.shape[1],
        time.perf_counter() - started,
    )

    summary = {key: float(array.mean()) for key, array in values.items()}
    if per_user:
        return summary, UserMetrics(users=eval_users, values=values)
    return summary


def evaluate_sampled(
    score_pairs_fn: PairScoreFn,
    targets: sp.spmatrix,
    exclude: Sequence[sp.spmatrix] = (),
    num_negatives: int = 1000,
    k: int = 10,
    seed: int = 0,
    batch_size: int = 1024,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """Sampled-ranking metrics, the protocol of the MGAT and MMGCN papers.

    Each user's positives (their row of ``targets``) are ranked together with
    ``num_negatives`` items drawn uniformly without replacement from the items the
    user never interacted with (in no split of ``exclude`` nor in ``targets``).
    Recall, precision, hit rate and NDCG are those of :func:`evaluate_full` over
    this candidate list. ``ndcg_bypos`` is the variant of the papers' released
    code, DCG divided by the number of positives instead of the ideal DCG; it is
    reported only to compare with those papers, since a perfect ranking scores
    below 1 on it for every user with more than one positive.

    A user with fewer than ``num_negatives`` such items is ranked against all of
    them (logged as a warning). Ties are pessimistic: a negative scored equal to a
    positive ranks above it, so a model giving every item the same score earns
    nothing, whatever the order of the candidates.

    The negatives depend on ``seed``, ``batch_size`` and the evaluated users; the
    same call gives the same numbers.

    Shapes:
        score_pairs_fn: (B,) int64 users and (B, C + P) int64 items on CPU ->
            (B, C + P) scores. The first C = min(num_negatives, I) columns are the
            sampled negatives, the rest the user's positives padded with item 0;
            padded and unavailable slots are ignored whatever their score.
        targets: (U, I) sparse, the held-out positives.
        exclude: each (U, I) sparse, the other splits of the user's interactions.

    Args:
        score_pairs_fn: scores given items for a chunk of users.
        targets: the held-out interactions (validation or test).
        exclude: the other interaction splits, never sampled as negatives.
        num_negatives: C, sampled items per user. Defaults to 1000.
        k: the cut-off K. Defaults to 10.
        seed: seeds the negative sampling.
        batch_size: users per chunk; memory is about B x I floats.
        users: optional user indices to restrict to, as in :func:`evaluate_full`.

    Returns:
        ``{"recall@K", "ndcg@K", "precision@K", "hit@K", "ndcg_bypos@K"}`` means.

    Raises:
        ConfigError: a cut-off, sample size or batch size below 1, mismatched
            matrix shapes, a score tensor of the wrong shape or with NaN, or no
            user with a target to evaluate.
    """
    (k,) = _check_ks((k,))
    _check_positive_int(num_negatives, "num_negatives")
    _check_positive_int(batch_size, "batch_size")
    target, excluded = _binary_splits(targets, exclude)
    eval_users = _users_with_targets(target, users)
    interacted = _binary(target + excluded)
    _warn_short_of_negatives(interacted, eval_users, num_negatives)

    generator = torch.Generator().manual_seed(int(seed))
    num_pos = np.diff(target.indptr)
    values = {f"{m}@{k}": np.empty(len(eval_users)) for m in SAMPLED_METRICS}
    with torch.no_grad():
        for start in range(0, len(eval_users), batch_size):
            chunk = eval_users[start : start + batch_size]
            negatives, valid_neg = _sample_negatives(
                interacted, chunk, num_negatives, generator
            )
            ranks = _positive_ranks(score_pairs_fn, chunk, target, negatives, valid_neg)
            chunk_pos = torch.from_numpy(num_pos[chunk])
            for key, value in _sampled_metrics(ranks, chunk_pos, k).items():
                values[key][start : start + len(chunk)] = value

    return {key: float(array.mean()) for key, array in values.items()}


def cold_item_targets(targets: sp.spmatrix, cold_items: np.ndarray) -> sp.csr_matrix:
    """Keeps only the target entries whose item is in ``cold_items``.

    Used for cold-start evaluation: pass the result as ``targets`` to the
    evaluation functions, whose averages then run over the users with at least
    one cold target.

    Shapes:
        targets: (U, I) sparse. cold_items: (n,) integer item indices in [0, I).
        Returns: (U, I) CSR with the same values on the kept entries.

    Raises:
        ConfigError: ``targets`` is not sparse or an item index is out of range.
    """
    matrix = _as_csr(targets, "targets")
    cold = _check_indices(cold_items, matrix.shape[1], "cold_items", "item")
    keep = np.zeros(matrix.shape[1], dtype=bool)
    keep[cold] = True

    kept = keep[matrix.indices]
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    counts = np.bincount(row_of[kept], minlength=matrix.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix(
        (matrix.data[kept], matrix.indices[kept], indptr), shape=matrix.shape
    )


def format_table(metrics: Mapping[str, float], digits: int = 4) -> str:
    """Renders ``{"recall@20": 0.1, ...}`` as a text table: a row per metric, a
    column per K, ``-`` where a pair is missing.

    Example::

        metric     @10     @20
        recall  0.0512  0.0873
        ndcg    0.0301  0.0398

    Raises:
        ConfigError: a key is not of the form ``"name@K"``.
    """
    cells: dict[tuple[str, int], float] = {}
    for key, value in metrics.items():
        name, _, k = key.rpartition("@")
        if not name or not k.isdigit():
            raise ConfigError(
                f"metric key {key!r} is not of the form 'name@K' (e.g. 'recall@20'); "
                "format_table only renders ranking metrics, pass the others apart."
            )
        cells[name, int(k)] = float(value)
    if not cells:
        return ""

    names = list(dict.fromkeys(name for name, _ in cells))
    names.sort(key=lambda n: _TABLE_ORDER.index(n) if n in _TABLE_ORDER else 99)
    ks = sorted({k for _, k in cells})
    rows = [["metric", *(f"@{k}" for k in ks)]]
    for name in names:
        row = [
            f"{cells[name, k]:.{digits}f}" if (name, k) in cells else "-" for k in ks
        ]
        rows.append([name, *row])

    # The metric name column is left-aligned, the numbers right-aligned.
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = []
    for row in rows:
        aligned = [cell.rjust(width) for cell, width in zip(row, widths, strict=True)]
        aligned[0] = row[0].ljust(widths[0])
        lines.append("  ".join(aligned))
    return "\n".join(lines)


def _top_hits(
    score_fn: ScoreFn,
    chunk: np.ndarray,
    target: sp.csr_matrix,
    excluded: sp.csr_matrix,
    k_max: int,
) -> torch.Tensor:
    """(B, Kmax) bool on CPU: whether the item at each top rank is a target."""
    num_items = target.shape[1]
    users = torch.from_numpy(chunk)
    scores = _call_scores(score_fn, (users,), (len(chunk), num_items), "(B, I)")
    device = scores.device

    ex_rows, ex_cols = _coords(excluded, chunk, device)
    # Out of place: score_fn may hand back a view of a matrix its caller keeps.
    scores = scores.index_put((ex_rows, ex_cols), scores.new_tensor(-math.inf))
    top = torch.topk(scores, min(k_max, num_items), dim=1)  # (B, Kmax)
    _check_not_nan(top.values)  # topk ranks NaN first, so a NaN row shows here

    # A dense (B, I) target mask makes the hit test one gather; an excluded
    # target is unset so that it is a miss even where -inf reaches the top K.
    is_target = torch.zeros(scores.shape, dtype=torch.bool, device=device)
    is_target[_coords(target, chunk, device)] = True
    is_target[ex_rows, ex_cols] = False
    hits = is_target.gather(1, top.indices)

    if hits.shape[1] < k_max:  # fewer items than the cut-off: the rest are misses
        pad = hits.new_zeros((len(chunk), k_max - hits.shape[1]))
        hits = torch.cat([hits, pad], dim=1)
    return hits.cpu()  # small; the metrics then run in float64 on any backend


def _full_metrics(
    hits: torch.Tensor,
    num_pos: torch.Tensor,
    ks: tuple[int, ...],
    metrics: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """Per-user metric values from the (B, Kmax) hit matrix of a chunk."""
    hits = hits.to(torch.float64)
    num_pos = num_pos.to(torch.float64)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64)
    discount = 1.0 / torch.log2(ranks + 1.0)

    found = hits.cumsum(1)  # hits within the top r, for every r
    dcg = (hits * discount).cumsum(1)
    ideal = discount.cumsum(0)  # IDCG when the top r are all targets
    precision_sum = (hits * found / ranks).cumsum(1)  # sum of Precision@r at hits

    out = {}
    for k in ks:
        at_k = found[:, k - 1]
        best = num_pos.clamp(max=k)  # min(|T_u|, K)
        per_metric = {
            "recall": at_k / num_pos,
            "ndcg": dcg[:, k - 1] / ideal[best.long() - 1],
            "precision": at_k / k,
            "hit": (at_k > 0).to(torch.float64),
            "map": precision_sum[:, k - 1] / best,
        }
        out.update({f"{name}@{k}": per_metric[name].cpu().numpy() for name in metrics})
    return out


def _sample_negatives(
    interacted: sp.csr_matrix,
    chunk: np.ndarray,
    num: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C) items drawn without replacement outside each user's interactions,
    and (B, C) bool marking the slots that hold such an item."""
    num_items = interacted.shape[1]
    keys = torch.rand((len(chunk), num_items), generator=generator)

    # The C smallest of i.i.d. uniform keys are a uniform C-subset; interacted
    # items get a key above every uniform one, so they come last and only fill
    # the slots of users with fewer than C available items.
    keys[_coords(interacted, chunk, "cpu")] = 2.0
    picked = torch.topk(keys, min(num, num_items), dim=1, largest=False, sorted=False)
    return picked.indices, picked.values < 2.0


def _positive_ranks(
    score_pairs_fn: PairScoreFn,
    chunk: np.ndarray,
    target: sp.csr_matrix,
    negatives: torch.Tensor,
    valid_neg: torch.Tensor,
) -> torch.Tensor:
    """(B, P) 0-based rank on CPU of each positive among the candidates; padding
    gets the largest int64, beyond any cut-off."""
    positives, valid_pos = _padded_rows(target, chunk)
    items = torch.cat([negatives, positives], dim=1)  # (B, C + P)
    users = torch.from_numpy(chunk)
    scores = _call_scores(score_pairs_fn, (users, items), tuple(items.shape), "(B, C)")
    _check_not_nan(scores)
    device = scores.device
    valid_neg, valid_pos = valid_neg.to(device), valid_pos.to(device)

    num_neg = negatives.shape[1]
    neg = scores[:, :num_neg].masked_fill(~valid_neg, -math.inf)
    pos = scores[:, num_neg:].masked_fill(~valid_pos, -math.inf).contiguous()

    # Negatives scored >= the positive rank above it (pessimistic ties).
    neg_sorted = neg.sort(dim=1).values
    neg_ahead = num_neg - torch.searchsorted(neg_sorted, pos, side="left")

    # Positives rank among themselves by score; a stable sort keeps the padding,
    # at the end of each row, behind real positives even at -inf.
    order = torch.sort(pos, dim=1, descending=True, stable=True).indices
    place = torch.arange(pos.shape[1], device=device).expand_as(order)
    pos_ahead = torch.empty_like(order).scatter_(1, order, place)

    ranks = neg_ahead + pos_ahead
    return ranks.masked_fill(~valid_pos, torch.iinfo(torch.long).max).cpu()


def _sampled_metrics(
    ranks: torch.Tensor, num_pos: torch.Tensor, k: int
) -> dict[str, np.ndarray]:
    """Per-user values at cut-off K from the (B, P) 0-based positive ranks."""
    num_pos = num_pos.to(torch.float64)
    in_top = ranks < k
    found = in_top.sum(1).to(torch.float64)
    gain = torch.where(in_top, 1.0 / torch.log2(ranks.to(torch.float64) + 2.0), 0.0)
    dcg = gain.sum(1)

    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    ideal = discount.cumsum(0)
    best = num_pos.clamp(max=k).long()  # min(|T_u|, K)

    per_metric = {
        "recall": found / num_pos,
        "ndcg": dcg / ideal[best - 1],
        "precision": found / k,
        "hit": (found > 0).to(torch.float64),
        # The released MGAT code's normalisation, kept only for comparison.
        "ndcg_bypos": dcg / num_pos,
    }
    return {f"{name}@{k}": v.cpu().numpy() for name, v in per_metric.items()}


def _call_scores(
    fn: Callable[..., torch.Tensor], args: tuple, expected: tuple[int, int], dims: str
) -> torch.Tensor:
    """Calls a score function and checks that its output has the shape ``dims``."""
    scores = fn(*args)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != expected:
        found = (
            tuple(scores.shape)
            if isinstance(scores, torch.Tensor)
            else type(scores).__name__
        )
        raise ConfigError(
            f"the score function returned {found} for {expected[0]} users; "
            f"expected a tensor of shape {dims} = {expected}. Fix: return one "
            "score per requested item for each user of the batch, in batch order."
        )
    if not scores.is_floating_point():
        scores = scores.to(torch.float32)
    return scores.detach()


def _check_not_nan(scores: torch.Tensor) -> None:
    if torch.isnan(scores).any():
        raise ConfigError(
            f"the score function returned NaN scores for some of {len(scores)} "
            "users; expected numbers. Fix: check the model for a diverged training "
            "run (NaN embeddings) before evaluating it."
        )


def _coords(
    matrix: sp.csr_matrix, chunk: np.ndarray, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row within chunk, item) index tensors of the entries of a chunk's rows."""
    rows = matrix[chunk]
    row_ids = np.repeat(np.arange(len(chunk)), np.diff(rows.indptr))
    return (
        torch.from_numpy(row_ids).to(device),
        torch.from_numpy(rows.indices.astype(np.int64)).to(device),
    )


def _padded_rows(
    matrix: sp.csr_matrix, chunk: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) items of each chunk row, padded with item 0, and the valid mask."""
    rows = matrix[chunk]
    counts = np.diff(rows.indptr)
    row_ids = np.repeat(np.arange(len(chunk)), counts)
    slots = np.arange(rows.nnz) - np.repeat(rows.indptr[:-1], counts)

    width = int(counts.max()) if len(counts) else 0
    items = torch.zeros((len(chunk), width), dtype=torch.long)
    valid = torch.zeros((len(chunk), width), dtype=torch.bool)
    items[row_ids, slots] = torch.from_numpy(rows.indices.astype(np.int64))
    valid[row_ids, slots] = True
    return items, valid


def _binary_splits(
    targets: sp.spmatrix, exclude: Sequence[sp.spmatrix] | sp.spmatrix
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The 0/1 CSR target matrix and the 0/1 union of the excluded splits."""
    target = _binary(_as_csr(targets, "targets"))
    if sp.issparse(exclude):
        exclude = [exclude]

    union = sp.csr_matrix(target.shape, dtype=np.int32)
    for position, split in enumerate(exclude):
        split = _as_csr(split, f"exclude[{position}]")
        if split.shape != target.shape:
            raise ConfigError(
                f"exclude[{position}] has shape {split.shape}; expected the shape of "
                f"targets, {target.shape} (users x items). Fix: build every split "
                "over the same user and item index."
            )
        union = union + _binary(split)
    return target, _binary(union)


def _as_csr(matrix: sp.spmatrix, name: str) -> sp.csr_matrix:
    if not sp.issparse(matrix) or len(matrix.shape) != 2:
        raise ConfigError(
            f"{name} is {type(matrix).__name__}; expected a 2-D scipy sparse "
            "(users x items) matrix. Fix: wrap it, e.g. scipy.sparse.csr_matrix(x)."
        )
    return sp.csr_matrix(matrix)


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A copy with one stored 1 per nonzero entry and sorted column indices."""
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.data = np.ones_like(matrix.data, dtype=np.int32)
    return matrix


def _users_with_targets(target: sp.csr_matrix, users: np.ndarray | None) -> np.ndarray:
    """(U_eval,) int64 users to evaluate: those given (or all) having a target."""
    num_users = target.shape[0]
    if users is None:
        chosen = np.arange(num_users, dtype=np.int64)
    else:
        chosen = _check_indices(users, num_users, "users", "user")
        if len(np.unique(chosen)) != len(chosen):
            raise ConfigError(
                "users holds duplicate indices; expected each user at most once, "
                "since a repeat would weigh that user twice. Fix: np.unique(users)."
            )

    chosen = chosen[np.diff(target.indptr)[chosen] > 0]
    if len(chosen) == 0:
        raise ConfigError(
            "no user to evaluate: expected at least one user with a target item, "
            f"found none among {num_users} users. Fix: check that the evaluated "
            "split is not empty (and, with users=, that they have held-out items)."
        )
    return chosen


def _check_indices(values: np.ndarray, size: int, name: str, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.integer) or array.size == 0
    ):
        raise ConfigError(
            f"{name} has dtype {array.dtype} and shape {array.shape}; expected a 1-D "
            f"array of integer {what} indices. Fix: pass indices, not ids or a mask."
        )
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= size):
        raise ConfigError(
            f"{name} holds {what} indices in [{array.min()}, {array.max()}]; expected "
            f"them in [0, {size - 1}]. Fix: map original ids to indices first."
        )
    return array


def _check_ks(ks: Sequence[int] | int) -> tuple[int, ...]:
    if _is_int(ks):
        ks = (ks,)
    ks = tuple(dict.fromkeys(ks))
    bad = [k for k in ks if not _is_int(k) or k < 1]
    if not ks or bad:
        raise ConfigError(
            f"cut-offs {list(ks)} include invalid values {bad}; expected one or more "
            "integers K >= 1. Fix: pass e.g. ks=(10, 20, 50)."
        )
    return tuple(int(k) for k in ks)


def _check_names(names: Sequence[str] | str, valid: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    names = tuple(dict.fromkeys(names))
    unknown = [name for name in names if name not in valid]
    if not names or unknown:
        raise ConfigError(
            f"unknown metric names {unknown} (got {list(names)}); expected one or "
            f"more of {list(valid)}."
        )
    return names


def _check_positive_int(value: int, name: str) -> None:
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{name} is {value!r}; expected an integer >= 1.")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _warn_short_of_negatives(
    interacted: sp.csr_matrix, users: np.ndarray, num_negatives: int
) -> None:
    available = interacted.shape[1] - np.diff(interacted.indptr)[users]
    short = int((available < num_negatives).sum())
    if short:
        logger.warning(
            "%d of %d users have fewer than %d items they never interacted with; "
            "they are ranked against all of those items instead.",
            short,
            len(users),
            num_negatives,
        )
