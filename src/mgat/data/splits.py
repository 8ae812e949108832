"""Splitters and filters for interactions that arrive without a train/valid/test split.

Every function takes a frame with columns ``user`` and ``item`` (and ``timestamp``
for the time-based splitters), leaves the input untouched, and is vectorised: no
Python loop runs over users or items. The splitters return a copy of the frame, in
the input's row order, with a ``split`` column in {train, valid, test};
``k_core`` returns the rows that survive the filter.

Interactions are expected to be unique (user, item) pairs: the importers drop
duplicates before splitting, otherwise one pair could land in two splits.

Shapes: N interactions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mgat.errors import ConfigError, DataError
from mgat.lazy import LazyModule

pd = LazyModule("pandas")

logger = logging.getLogger(__name__)

SPLIT_METHODS = ("random", "leave-last-out", "temporal")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
_SPLIT_NAMES = np.array(["train", "valid", "test"])


def random_split(
    frame: pd.DataFrame,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
) -> pd.DataFrame:
    """Shuffle each user's interactions and cut them by ``ratios``.

    A user with n interactions gets ``round(n * ratios[1])`` validation and
    ``round(n * ratios[2])`` test interactions (halves round up) and keeps the
    rest for training, never fewer than one: a user with one interaction keeps
    it in train. The same frame and seed always give the same split.

    Args:
        frame: interactions with columns ``user`` and ``item``.
        ratios: train, valid and test fractions; non-negative, summing to 1.
        seed: seed of the shuffle.

    Returns:
        A copy of ``frame`` with a ``split`` column.

    Raises:
        DataError: when a column is missing.
        ConfigError: when the ratios are malformed.
    """
    _require_columns(frame, ("user", "item"), "random split")
    ratios = _checked_ratios(ratios)

    codes = _group_codes(frame["user"])
    shuffle_key = np.random.default_rng(seed).random(len(frame))
    order = np.lexsort((shuffle_key, codes))
    rank, size = _rank_within_groups(codes, order)

    num_valid = np.floor(size * ratios[1] + 0.5).astype(np.int64)
    num_test = np.floor(size * ratios[2] + 0.5).astype(np.int64)
    num_valid, num_test = _keep_one_for_training(size, num_valid, num_test)
    # Ranks [0, n_train) train, then n_valid valid, then the test tail.
    num_train = size - num_valid - num_test
    label = (rank >= num_train).astype(np.int64) + (rank >= num_train + num_valid)
    return _with_split(frame, order, label)


def leave_last_out(frame: pd.DataFrame, min_interactions: int = 3) -> pd.DataFrame:
    """Hold out each user's latest interaction for test and the one before for valid.

    Ties in ``timestamp`` are broken by row order: a later row counts as later.
    Users with fewer than ``min_interactions`` interactions keep them all in
    train, so every held-out user also has a training history.

    Args:
        frame: interactions with columns ``user``, ``item`` and ``timestamp``.
        min_interactions: the fewest interactions a user needs to contribute
            to valid and test; at least 3 (one each).

    Returns:
        A copy of ``frame`` with a ``split`` column.

    Raises:
        DataError: when a column is missing or a timestamp is missing or not
            a number or date.
        ConfigError: when ``min_interactions`` is below 3.
    """
    _require_columns(frame, ("user", "item", "timestamp"), "leave-last-out split")
    if int(min_interactions) < 3:
        raise ConfigError(
            f"leave-last-out: min_interactions must be at least 3 (one train, one "
            f"valid, one test interaction), got {min_interactions}."
        )
    time = _timestamp_keys(frame, "leave-last-out split")

    codes = _group_codes(frame["user"])
    order = np.lexsort((np.arange(len(frame)), time, codes))
    rank, size = _rank_within_groups(codes, order)

    from_end = size - 1 - rank
    held_out = size >= int(min_interactions)
    label = np.where(held_out & (from_end == 0), 2, 0)
    label = np.where(held_out & (from_end == 1), 1, label)
    return _with_split(frame, order, label)


def temporal_split(
    frame: pd.DataFrame, ratios: Sequence[float] = DEFAULT_RATIOS
) -> pd.DataFrame:
    """Cut the whole timeline at two global timestamps.

    The cut points are the timestamps found at fractions ``ratios[0]`` and
    ``ratios[0] + ratios[1]`` of the interactions in time order. Rows sharing
    a cut-point timestamp all go to the later split, so no instant is divided.
    Users active only late have no training interaction (cold users).

    Args:
        frame: interactions with columns ``user``, ``item`` and ``timestamp``.
        ratios: train, valid and test fractions; non-negative, summing to 1.

    Returns:
        A copy of ``frame`` with a ``split`` column.

    Raises:
        DataError: when a column or a timestamp is missing.
        ConfigError: when the ratios are malformed.
    """
    _require_columns(frame, ("user", "item", "timestamp"), "temporal split")
    ratios = _checked_ratios(ratios)
    time = _timestamp_keys(frame, "temporal split")

    ordered = np.sort(time)
    label = np.zeros(len(time), dtype=np.int64)
    for fraction in (ratios[0], ratios[0] + ratios[1]):
        cut = int(np.floor(fraction * len(ordered) + 0.5))
        if cut < len(ordered):  # a cut at the very end leaves the later split empty
            label += time >= ordered[cut]

    split = frame.copy()
    split["split"] = _SPLIT_NAMES[label]
    return split


def k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Keep the interactions whose user and item both have at least ``k`` of them.

    Removing a sparse item can push a user below ``k`` and the other way round,
    so the filter repeats until nothing changes (the k-core of the bipartite
    graph). Each round is vectorised; there are few rounds in practice.

    Args:
        frame: interactions with columns ``user`` and ``item``.
        k: the minimum degree, at least 1.

    Returns:
        The surviving rows, in input order, with a fresh index.

    Raises:
        DataError: when a column is missing, or when nothing survives.
        ConfigError: when ``k`` is not a positive integer.
    """
    _require_columns(frame, ("user", "item"), "k-core filter")
    if isinstance(k, bool) or not float(k).is_integer() or int(k) < 1:
        raise ConfigError(f"k-core: k must be a positive integer, got {k!r}.")
    k = int(k)

    users = _group_codes(frame["user"])
    items = _group_codes(frame["item"])
    keep = np.ones(len(frame), dtype=bool)
    while True:
        user_degree = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_degree = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        survives = keep & (user_degree[users] >= k) & (item_degree[items] >= k)
        if survives.sum() == keep.sum():
            break
        keep = survives

    if not keep.any():
        raise DataError(
            f"k-core with k={k} removed all {len(frame)} interactions: no user and "
            "item pair is dense enough. Use a smaller k, or no k-core filter."
        )
    logger.info(
        "%d-core kept %d of %d interactions (%d users, %d items)",
        k,
        keep.sum(),
        len(frame),
        len(np.unique(users[keep])),
        len(np.unique(items[keep])),
    )
    return frame.loc[keep].reset_index(drop=True)


def split_interactions(
    frame: pd.DataFrame,
    method: str = "random",
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
) -> pd.DataFrame:
    """Apply the splitter named ``method`` (one of ``SPLIT_METHODS``).

    ``ratios`` is ignored by leave-last-out and ``seed`` by the time-based
    methods, which are deterministic.

    Raises:
        ConfigError: for an unknown method name.
    """
    if method == "random":
        return random_split(frame, ratios, seed)
    if method == "leave-last-out":
        return leave_last_out(frame)
    if method == "temporal":
        return temporal_split(frame, ratios)
    raise ConfigError(
        f"unknown split method {method!r}; expected one of {', '.join(SPLIT_METHODS)}."
    )


# ---------------------------------------------------------------------- helpers
def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        hint = (
            " Time-based splits need a timestamp column; use the random split "
            "when there is none."
            if "timestamp" in missing
            else ""
        )
        raise DataError(
            f"{what}: missing column(s) {', '.join(missing)}; found {found}.{hint}"
        )


def _checked_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    values = np.asarray(ratios, dtype=np.float64).ravel()
    if (
        len(values) != 3
        or not np.isfinite(values).all()
        or (values < 0).any()
        or values[0] <= 0
        or abs(values.sum() - 1.0) > 1e-6
    ):
        raise ConfigError(
            f"split ratios must be three non-negative fractions (train, valid, test) "
            f"with a positive train fraction, summing to 1; got {list(ratios)}. "
            "Example: 0.8,0.1,0.1."
        )
    return float(values[0]), float(values[1]), float(values[2])


def _group_codes(column: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(column, use_na_sentinel=False)
    return codes.astype(np.int64)


def _rank_within_groups(
    codes: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each sorted row inside its group, and the group's size.

    ``order`` must sort the rows by group code first; both outputs follow it.
    """
    counts = np.bincount(codes, minlength=codes.max(initial=-1) + 1)
    starts = np.cumsum(counts) - counts
    grouped = codes[order]
    rank = np.arange(len(order)) - starts[grouped]
    return rank, counts[grouped]


def _keep_one_for_training(
    size: np.ndarray, num_valid: np.ndarray, num_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # Large held-out ratios could take a small user's last interaction; give
    # it back from valid first, then from test.
    excess = np.maximum(num_valid + num_test - (size - 1), 0)
    from_valid = np.minimum(excess, num_valid)
    return num_valid - from_valid, num_test - (excess - from_valid)


def _with_split(
    frame: pd.DataFrame, order: np.ndarray, label: np.ndarray
) -> pd.DataFrame:
    labels = np.empty(len(frame), dtype=np.int64)
    labels[order] = label
    split = frame.copy()
    split["split"] = _SPLIT_NAMES[labels]
    return split


def _timestamp_keys(frame: pd.DataFrame, what: str) -> np.ndarray:
    """The timestamp column as sortable int64 or float64 values."""
    column = frame["timestamp"]
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(
            f"{what}: {int(column.isna().sum())} interactions have no timestamp "
            f"(first: row {row}). Fill them in, drop them, or use the random split."
        )
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.to_numpy().astype("datetime64[ns]").view(np.int64)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy()
    raise DataError(
        f"{what}: the timestamp column has dtype {column.dtype}; expected numbers "
        "(e.g. Unix seconds) or dates. Convert it, e.g. with pandas.to_datetime."
    )
