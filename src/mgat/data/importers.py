"""Importers: build a ``Dataset`` from the layouts other recommendation code uses.

Three source layouts are read (``docs/data-format.md`` describes each one):

- ``mmrec``: a directory with ``<name>.inter`` (tab-separated ``userID``,
  ``itemID``, ``x_label`` with 0/1/2 for train/valid/test) and optional
  ``image_feat.npy``, ``text_feat.npy`` and ``audio_feat.npy``.
- ``research``: the MMGCN/MGAT research-code directory: ``train.npy`` pairs,
  ``val_full.npy``/``test_full.npy`` per-user rows, ``Feature*.npy`` arrays.
  Item ids there are offset by the user count.
- ``csv``: one CSV/TSV interactions file plus ``name=path.npy`` feature
  arrays; unsplit interactions go through a splitter (``mgat.data.splits``).

Each layout has an ``import_<format>`` function; ``import_dataset`` dispatches
by name. Every importer returns a validated ``Dataset`` and never writes files.

Shapes: U users, I items, E interactions, D_m width of modality m.
"""

from __future__ import annotations

import inspect
import logging
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mgat.data.dataset import SPLITS, UNREADABLE, Dataset, load_array
from mgat.data.splits import DEFAULT_RATIOS, SPLIT_METHODS, k_core, split_interactions
from mgat.errors import ConfigError, DataError
from mgat.lazy import LazyModule

pd = LazyModule("pandas")

logger = logging.getLogger(__name__)

IMPORT_FORMATS = ("mmrec", "research", "csv")
# Indices that an index layout may leave without any interaction (besides
# half of them): users or items that only exist in the numbering.
SPARE_INDICES = 100_000

MMREC_FEATURES = {
    "image_feat.npy": "visual",
    "text_feat.npy": "textual",
    "audio_feat.npy": "acoustic",
}
MMREC_LABELS = {0: "train", 1: "valid", 2: "test"}

RESEARCH_FEATURES = {
    "FeatureVideo": "visual",
    "FeatureAudio": "acoustic",
    "FeatureText": "textual",
}
RESEARCH_HELD_OUT = {
    "valid": ("val_full.npy", "val.npy"),
    "test": ("test_full.npy", "test.npy"),
}


# ------------------------------------------------------------------- dispatch
def import_dataset(format: str, src: str | Path, **options) -> Dataset:
    """Import ``src`` with the importer of ``format`` (one of ``IMPORT_FORMATS``).

    Args:
        format: ``"mmrec"``, ``"research"`` or ``"csv"``.
        src: the source directory (``mmrec``, ``research``) or interactions
            file (``csv``).
        **options: keyword options of that format's importer.

    Raises:
        DataError: for an unknown format or malformed source data.
        ConfigError: for an option the format's importer does not take.
    """
    importer = _importer(format)
    unknown = sorted(set(options) - set(import_options(format)))
    if unknown:
        raise ConfigError(
            f"option(s) {', '.join(unknown)} do not apply to the {format} format; "
            f"it takes: {', '.join(import_options(format))}."
        )
    return importer(src, **options)


def import_options(format: str) -> list[str]:
    """Names of the keyword options the importer of ``format`` takes."""
    parameters = inspect.signature(_importer(format)).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _importer(format: str):
    importers = {"mmrec": import_mmrec, "research": import_research, "csv": import_csv}
    if format not in importers:
        raise DataError(
            f"unknown import format {format!r}; expected one of "
            f"{', '.join(IMPORT_FORMATS)} (docs/data-format.md describes each)."
        )
    return importers[format]


# ---------------------------------------------------------------------- MMRec
def import_mmrec(
    src: str | Path,
    *,
    name: str | None = None,
    user_col: str = "userID",
    item_col: str = "itemID",
    split_col: str = "x_label",
) -> Dataset:
    """Import an MMRec dataset directory.

    MMRec stores ``<name>.inter``, a tab-separated file whose user and item
    ids are already indices ``0..U-1`` and ``0..I-1`` and whose ``x_label``
    column holds 0/1/2 for train/valid/test. Feature arrays beside it have one
    row per item index: ``image_feat.npy`` (visual), ``text_feat.npy``
    (textual), ``audio_feat.npy`` (acoustic). Other columns (rating,
    timestamp) are ignored.

    Args:
        src: the directory.
        name: picks ``<name>.inter`` when the directory holds several; also
            the dataset's name (default: the ``.inter`` file's stem).
        user_col: the user column.
        item_col: the item column.
        split_col: the column of 0/1/2 split labels.

    Returns:
        The dataset; ids are the MMRec indices as strings.

    Raises:
        DataError: for a missing file or column, a negative, non-integer or
            out-of-range id, an unknown split label, or malformed features.
    """
    root = _source_directory(src, "mmrec")
    path = _find_inter_file(root, name)
    frame = _read_table(path, sep="\t", id_columns=(user_col, item_col))
    _require_columns(frame, (user_col, item_col, split_col), path)

    users = _integer_ids(frame[user_col], "user", path)
    items = _integer_ids(frame[item_col], "item", path)
    splits = _mmrec_split_names(frame[split_col], path)
    features = {
        modality: _load_array(root / filename, modality)
        for filename, modality in MMREC_FEATURES.items()
        if (root / filename).exists()
    }

    num_items = _feature_rows(features, root) or _index_count(items, "item", path)
    _check_below(items, num_items, "item", path, bool(features))
    return _indexed_dataset(
        name or path.stem,
        users,
        items,
        splits,
        _index_count(users, "user", path),
        num_items,
        features,
        {"imported_from": {"format": "mmrec", "path": str(root)}},
    )


def _find_inter_file(root: Path, name: str | None) -> Path:
    if name is not None:
        path = root / f"{name}.inter"
        if not path.exists():
            raise DataError(
                f"{root}: no {name}.inter. MMRec names the interactions file after "
                "the dataset; check the name or leave it out to use the only .inter."
            )
        return path
    found = sorted(root.glob("*.inter"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(
            f"{root}: no .inter file. An MMRec dataset directory holds "
            "<name>.inter with columns userID, itemID, x_label (tab-separated)."
        )
    raise DataError(
        f"{root}: several .inter files ({', '.join(p.name for p in found)}); "
        "pass the dataset name to choose one."
    )


def _mmrec_split_names(labels: pd.Series, source: Path) -> np.ndarray:
    values = pd.to_numeric(labels, errors="coerce").to_numpy()
    bad = ~np.isin(values, list(MMREC_LABELS))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: line {row + 2} has split label {labels.iloc[row]!r}; "
            "expected 0 (train), 1 (valid) or 2 (test)."
        )
    names = np.array([MMREC_LABELS[key] for key in sorted(MMREC_LABELS)])
    return names[values.astype(np.int64)]


# ------------------------------------------------------------ research code
def import_research(
    src: str | Path,
    *,
    name: str | None = None,
    num_users: int | None = None,
    allow_pickle: bool = True,
) -> Dataset:
    """Import a directory in the MMGCN/MGAT research-code layout.

    The layout is a graph with users and items numbered together: users
    ``0..U-1`` and items ``U..U+I-1``. Files:

    - ``train.npy``: (E, 2) integer (user, item) pairs.
    - ``val_full.npy`` and ``test_full.npy`` (or ``val.npy``/``test.npy``):
      one row per user, ``[user, item, item, ...]``, the user's held-out items.
    - ``Feature*.npy``: (I, D_m) item features; ``FeatureVideo`` is visual,
      ``FeatureAudio`` acoustic, ``FeatureText`` textual, and any other
      ``Feature<Name>`` becomes the modality ``name``.

    Security: the held-out files are ragged rows stored as numpy object
    arrays, which can only be read by unpickling, and unpickling a file can
    run arbitrary code. They are unpickled only here, where the caller chose
    this legacy format, and only when a plain load fails; import files from
    sources you trust, or pass ``allow_pickle=False`` to refuse them.

    Args:
        src: the directory.
        name: the dataset's name (default: the directory's name).
        num_users: U, when it is larger than the highest user id plus one
            (users without any interaction); inferred otherwise.
        allow_pickle: whether object-array held-out files may be unpickled.

    Returns:
        The dataset; user ids are ``0..U-1`` and item ids the item indices
        ``0..I-1`` (the research item id minus U), as strings.

    Raises:
        DataError: for a missing file, a malformed array, an item id below the
            user count or an id out of range, or malformed features.
    """
    root = _source_directory(src, "research")
    train = _research_train_pairs(root / "train.npy")
    held_out = {
        split: _held_out_pairs(_held_out_file(root, split), allow_pickle)
        for split in ("valid", "test")
    }
    features = _research_features(root)

    parts = {"train": train, **held_out}
    users = np.concatenate([pairs[:, 0] for pairs in parts.values()])
    raw_items = np.concatenate([pairs[:, 1] for pairs in parts.values()])
    splits = np.concatenate([np.full(len(p), s) for s, p in parts.items()])
    num_users = _research_num_users(users, num_users, root)

    items = raw_items - num_users
    _check_item_offset(items, raw_items, num_users, root)
    num_items = _feature_rows(features, root) or _index_count(items, "item", root)
    _check_below(items, num_items, "item", root, bool(features))
    return _indexed_dataset(
        name or root.name,
        users,
        items,
        splits,
        num_users,
        num_items,
        features,
        {"imported_from": {"format": "research", "path": str(root)}},
    )


def _research_train_pairs(path: Path) -> np.ndarray:
    if not path.exists():
        raise DataError(
            f"{path.parent}: no train.npy. The research layout needs train.npy, "
            "val_full.npy (or val.npy) and test_full.npy (or test.npy)."
        )
    pairs = _load_array(path, "training pairs")
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise DataError(
            f"{path}: expected a non-empty (E, 2) array of (user, item) pairs, got "
            f"shape {pairs.shape}."
        )
    return _as_integers(pairs, path)


def _held_out_file(root: Path, split: str) -> Path:
    for filename in RESEARCH_HELD_OUT[split]:
        if (root / filename).exists():
            return root / filename
    raise DataError(
        f"{root}: no {split} file; expected {' or '.join(RESEARCH_HELD_OUT[split])} "
        "with one [user, item, item, ...] row per user."
    )


def _held_out_pairs(path: Path, allow_pickle: bool) -> np.ndarray:
    """(n, 2) raw (user, item) pairs from a file of ``[user, item, ...]`` rows."""
    rows = _load_held_out_rows(path, allow_pickle)
    if rows.dtype != object and rows.ndim == 2:
        users, items = rows[:, :1], rows[:, 1:]
        pairs = np.stack([np.broadcast_to(users, items.shape), items], axis=-1)
        return _as_integers(pairs.reshape(-1, 2), path)

    # Ragged rows: flatten them once, then find each row's leading user id.
    rows = [np.asarray(row).ravel() for row in rows.ravel()]
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    if len(rows) == 0 or (lengths == 0).any():
        raise DataError(
            f"{path}: expected rows [user, item, item, ...]; found "
            f"{'no rows' if len(rows) == 0 else 'an empty row'}."
        )
    flat = _as_integers(np.concatenate(rows), path)
    starts = np.cumsum(lengths) - lengths
    is_item = np.ones(len(flat), dtype=bool)
    is_item[starts] = False
    users = np.repeat(flat[starts], lengths - 1)
    return np.stack([users, flat[is_item]], axis=1)


def _load_held_out_rows(path: Path, allow_pickle: bool) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise DataError(f"{path}: cannot read as a .npy array ({err}).") from err
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read as a .npy array ({err}).") from err

    if not allow_pickle:
        raise DataError(
            f"{path}: a pickled object array, and unpickling was refused. Allow it "
            "only for files from a source you trust (it can run code), or convert "
            "the file to a plain integer array."
        )
    logger.warning(
        "%s: unpickling a legacy object array; only import files you trust", path
    )
    try:
        return np.load(path, allow_pickle=True)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataError(f"{path}: cannot unpickle the object array ({err}).") from err


def _research_features(root: Path) -> dict[str, np.ndarray]:
    features: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for path in sorted(root.glob("Feature*.npy")):
        modality = _research_modality(path.stem)
        if modality in features:
            raise DataError(
                f"{root}: both {sources[modality]} and {path.name} hold the "
                f"{modality} modality; keep one of them."
            )
        features[modality] = _load_array(path, modality)
        sources[modality] = path.name
    return features


def _research_modality(stem: str) -> str:
    for prefix, modality in RESEARCH_FEATURES.items():
        if stem.startswith(prefix):
            return modality
    name = re.sub(r"[^0-9a-z]+", "_", stem[len("Feature") :].lower()).strip("_")
    if not name:
        raise DataError(
            f"feature file {stem}.npy: cannot tell its modality; name it "
            "Feature<Modality>.npy, e.g. FeatureVideo.npy."
        )
    return name


def _research_num_users(users: np.ndarray, given: int | None, root: Path) -> int:
    if (users < 0).any():
        raise DataError(
            f"{root}: user id {users[users < 0][0]} is negative; the research "
            "layout numbers users 0..U-1."
        )
    inferred = _index_count(users, "user", root)
    if given is None:
        return inferred
    if int(given) < inferred:
        raise DataError(
            f"{root}: num_users={given} but user id {inferred - 1} occurs; "
            f"expected at least {inferred}. Leave num_users out to infer it."
        )
    _check_index_count(int(given), users, "user", root)
    return int(given)


def _check_item_offset(
    items: np.ndarray, raw_items: np.ndarray, num_users: int, root: Path
) -> None:
    if (items < 0).any():
        row = int(np.flatnonzero(items < 0)[0])
        raise DataError(
            f"{root}: item id {raw_items[row]} is below the user count {num_users}. "
            "The research layout numbers items after users (item id = index + "
            "number of users); check that the files use that numbering."
        )


# ------------------------------------------------------------------ CSV / TSV
def import_csv(
    src: str | Path,
    *,
    name: str | None = None,
    user_col: str = "user",
    item_col: str = "item",
    timestamp_col: str | None = None,
    rating_col: str | None = None,
    split_col: str | None = None,
    sep: str | None = None,
    features: Mapping[str, str | Path] | None = None,
    items_file: str | Path | None = None,
    split_method: str | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    kcore: int | None = None,
    min_rating: float | None = None,
) -> Dataset:
    """Import a CSV/TSV interactions file and optional item feature arrays.

    Steps: read the file; keep ratings of at least ``min_rating``; drop
    duplicate interactions (with a warning, keeping the earliest); apply the
    ``kcore`` filter; split with ``split_method`` unless the file has a split
    column; attach the features, whose rows follow ``items_file`` (one item
    id per line) or else the sorted item ids.

    Args:
        src: the interactions file (``.csv``, ``.tsv``, optionally ``.gz``).
        name: the dataset's name (default: the file's stem).
        user_col: the user id column.
        item_col: the item id column.
        timestamp_col: the time column (numbers or dates); default
            ``timestamp`` when present. Needed by the time-based splits and
            used to keep the earliest of duplicate interactions.
        rating_col: the rating column; default ``rating`` when present.
        split_col: a column of train/valid/test labels; default ``split``
            when present. With one, the file's own split is kept.
        sep: the field separator; default tab for ``.tsv``/``.tab`` files
            and comma otherwise.
        features: modality name to a ``.npy`` (I, D_m) array path.
        items_file: item ids in feature-row order, one per line (the first
            column of a CSV; a first line equal to ``item_col`` is a header).
        split_method: one of ``SPLIT_METHODS`` for unsplit data (default
            ``random``); ignored, with a warning, when the file has a split
            column.
        ratios: train, valid and test fractions of the random and temporal
            splits.
        seed: seed of the random split.
        kcore: keep only users and items with at least this many
            interactions (iteratively); items dropped here also leave the
            feature arrays.
        min_rating: keep only interactions rated at least this.

    Returns:
        The dataset, with ids as they appear in the file.

    Raises:
        DataError: for a missing file or column, empty ids, items without a
            feature row, feature arrays that do not match the items, or
            malformed splits.
        ConfigError: for an unknown split method or malformed ratios.
    """
    path = _source_file(src)
    if split_method is not None and split_method not in SPLIT_METHODS:
        raise ConfigError(
            f"unknown split method {split_method!r}; expected one of "
            f"{', '.join(SPLIT_METHODS)}."
        )
    separator = sep or _default_separator(path)
    frame = _read_table(path, sep=separator, id_columns=(user_col, item_col))
    frame = _canonical_columns(
        frame, path, user_col, item_col, timestamp_col, rating_col, split_col
    )
    if min_rating is not None:
        frame = _filter_rating(frame, min_rating, path)
    frame = _drop_duplicate_interactions(frame, path)
    if kcore is not None:
        frame = k_core(frame, kcore)
    how = "from the file" if "split" in frame.columns else split_method or "random"
    frame = _split_if_unsplit(frame, split_method, ratios, seed, path)

    arrays = {m: _load_array(Path(p), m) for m, p in (features or {}).items()}
    _check_two_dimensional(arrays, path)
    item_ids = _feature_item_ids(frame, arrays, items_file, item_col, path)
    if kcore is not None and item_ids is not None:
        item_ids, arrays = _keep_items_seen(frame, item_ids, arrays)
    meta = {
        "imported_from": {"format": "csv", "path": str(path)},
        "split": how,
        "seed": seed if how == "random" else None,
        "kcore": kcore,
    }
    return Dataset.from_frame(
        name or _stem(path),
        frame,
        arrays,
        item_ids=item_ids,
        meta=meta,
        source=str(path),
    )


def _split_if_unsplit(
    frame: pd.DataFrame,
    method: str | None,
    ratios: Sequence[float],
    seed: int,
    path: Path,
) -> pd.DataFrame:
    if "split" in frame.columns:
        if method is not None:
            logger.warning(
                "%s has a split column, so the %s split was not applied; "
                "rename the column to re-split the data",
                path,
                method,
            )
        return frame
    method = method or "random"
    logger.info("splitting %d interactions with the %s method", len(frame), method)
    return split_interactions(frame, method, ratios, seed)


def _canonical_columns(
    frame: pd.DataFrame,
    path: Path,
    user_col: str,
    item_col: str,
    timestamp_col: str | None,
    rating_col: str | None,
    split_col: str | None,
) -> pd.DataFrame:
    """Rename the configured columns to user, item[, timestamp, rating, split]."""
    _require_columns(frame, (user_col, item_col), path)
    columns = {user_col: "user", item_col: "item"}
    for given, default in (
        (timestamp_col, "timestamp"),
        (rating_col, "rating"),
        (split_col, "split"),
    ):
        if given is not None:
            _require_columns(frame, (given,), path)
            columns[given] = default
        elif default in frame.columns and default not in (user_col, item_col):
            columns[default] = default
    frame = frame[list(columns)].rename(columns=columns)

    _check_no_missing_ids(frame, path)
    if "split" in frame.columns:
        _check_split_labels(frame["split"], path)
    if "timestamp" in frame.columns:
        frame["timestamp"] = _as_time(frame["timestamp"], path)
    return frame


def _check_no_missing_ids(frame: pd.DataFrame, path: Path) -> None:
    missing = frame[["user", "item"]].isna().any(axis=1).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{path}: line {row + 2} has an empty user or item id "
            f"({int(missing.sum())} such lines). Fill them in or delete them."
        )


def _check_split_labels(labels: pd.Series, path: Path) -> None:
    bad = ~labels.isin(SPLITS).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: line {row + 2} has split {labels.iloc[row]!r}; expected one of "
            f"{', '.join(SPLITS)}. Fix the labels, or name another column."
        )


def _as_time(column: pd.Series, path: Path) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) or column.isna().all():
        return column
    try:
        return pd.to_datetime(column)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{path}: the timestamp column is neither numbers nor dates ({err}). "
            "Use Unix times or ISO dates such as 2024-01-31T12:00:00."
        ) from err


def _filter_rating(frame: pd.DataFrame, min_rating: float, path: Path) -> pd.DataFrame:
    if "rating" not in frame.columns:
        raise DataError(
            f"{path}: min_rating needs a rating column; found "
            f"{', '.join(frame.columns)}. Name it with rating_col."
        )
    rating = pd.to_numeric(frame["rating"], errors="coerce")
    if rating.isna().any():
        row = int(np.flatnonzero(rating.isna().to_numpy())[0])
        raise DataError(
            f"{path}: line {row + 2} has rating {frame['rating'].iloc[row]!r}; "
            "expected a number."
        )
    kept = frame.loc[(rating >= min_rating).to_numpy()].reset_index(drop=True)
    logger.info(
        "kept %d of %d interactions rated at least %s",
        len(kept),
        len(frame),
        min_rating,
    )
    return kept


def _drop_duplicate_interactions(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    # With a split column a repeated pair in two splits is an overlap, which
    # the dataset reports as an error; only exact repeats are dropped here.
    key = ["user", "item", "split"] if "split" in frame.columns else ["user", "item"]
    ordered = frame
    if "timestamp" in frame.columns:
        ordered = frame.sort_values("timestamp", kind="stable")
    repeated = ordered.duplicated(subset=key, keep="first")
    if not repeated.any():
        return frame
    logger.warning(
        "%s: dropped %d duplicate interactions (same %s), kept the %s of each",
        path,
        int(repeated.sum()),
        ", ".join(key),
        "earliest" if "timestamp" in frame.columns else "first",
    )
    return ordered.loc[~repeated].sort_index().reset_index(drop=True)


def _feature_item_ids(
    frame: pd.DataFrame,
    arrays: dict[str, np.ndarray],
    items_file: str | Path | None,
    item_col: str,
    path: Path,
) -> np.ndarray | None:
    """The item ids in feature-row order, or None to let the dataset sort them."""
    if items_file is not None:
        item_ids = _read_items_file(Path(items_file), item_col)
        order = f"the {len(item_ids)} ids of {items_file}"
    elif arrays:
        item_ids = _sorted_ids(frame["item"])
        order = f"the {len(item_ids)} distinct item ids of {path.name}, sorted"
    else:
        return None

    unknown = ~frame["item"].isin(item_ids).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(
            f"{path}: {int(unknown.sum())} interactions have item ids with no "
            f"feature row (e.g. {frame['item'].iloc[row]!r}); the rows follow "
            f"{order}. Add the ids to the items file or remove those interactions."
        )
    for modality, array in arrays.items():
        if len(array) != len(item_ids):
            raise DataError(
                f"feature {modality!r}: {len(array)} rows but {len(item_ids)} items "
                f"(rows follow {order}). Give one row per item, or pass an items "
                "file listing the item of each row."
            )
    return item_ids


def _read_items_file(path: Path, item_col: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(
            f"items file {path} does not exist; expected one item id per line, in "
            "the order of the feature rows."
        )
    try:
        table = pd.read_csv(path, header=None, dtype=str, skip_blank_lines=True)
    except pd.errors.EmptyDataError as err:
        message = f"items file {path} is empty; expected one id per line."
        raise DataError(message) from err
    except (pd.errors.ParserError, UnicodeDecodeError, *UNREADABLE) as err:
        message = f"items file {path}: cannot parse ({err}); expected one id per line."
        raise DataError(message) from err
    ids = table.iloc[:, 0].str.strip().to_numpy()
    if len(ids) and ids[0] == item_col:
        ids = ids[1:]
    if pd.isna(ids).any() or len(ids) == 0:
        raise DataError(f"items file {path}: expected one non-empty id per line.")
    return ids.astype(str)


def _keep_items_seen(
    frame: pd.DataFrame, item_ids: np.ndarray, arrays: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Drop the items (and their feature rows) that a filter left without data."""
    kept = np.isin(item_ids, frame["item"].unique())
    return item_ids[kept], {m: a[kept] for m, a in arrays.items()}


def _sorted_ids(column: pd.Series) -> np.ndarray:
    unique = pd.unique(column.astype(str))
    if all(s.removeprefix("-").isdecimal() for s in unique):  # what int() reads
        return np.array(sorted(unique, key=int), dtype=str)
    return np.array(sorted(unique), dtype=str)


def _default_separator(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return "\t" if suffixes and suffixes[-1] in (".tsv", ".tab", ".inter") else ","


def _stem(path: Path) -> str:
    return path.name.split(".")[0] or path.name


# --------------------------------------------------------------------- shared
def _source_directory(src: str | Path, format: str) -> Path:
    root = Path(src)
    if not root.is_dir():
        raise DataError(
            f"{format} import: expected a directory, but {root} "
            f"{'is a file' if root.exists() else 'does not exist'}."
        )
    return root


def _source_file(src: str | Path) -> Path:
    path = Path(src)
    if not path.is_file():
        raise DataError(
            f"csv import: expected an interactions file, but {path} "
            f"{'is a directory' if path.exists() else 'does not exist'}."
        )
    return path


def _read_table(path: Path, sep: str, id_columns: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, sep=sep, dtype={c: str for c in id_columns})
    except pd.errors.EmptyDataError as err:
        message = f"{path}: the file is empty; expected a header and rows."
        raise DataError(message) from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        message = f"{path}: cannot parse with separator {sep!r} ({err})."
        raise DataError(message) from err
    except UNREADABLE as err:
        message = f"{path}: cannot read the file ({err}); is it compressed as named?"
        raise DataError(message) from err
    if frame.empty:
        raise DataError(f"{path}: no interactions below the header.")
    return frame


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        hint = (
            " A single found column often means the wrong separator."
            if len(frame.columns) == 1
            else ""
        )
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found {found}.{hint} "
            "Name the columns with the user_col, item_col, ... options "
            "(--user-col, --item-col, ... on the command line)."
        )


def _integer_ids(column: pd.Series, kind: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values))
    bad |= values >= 2.0**63  # beyond int64
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: line {row + 2} has {kind} id {column.iloc[row]!r}; expected "
            f"a non-negative integer index ({int(bad.sum())} such lines)."
        )
    return values.astype(np.int64)


def _as_integers(array: np.ndarray, path: Path) -> np.ndarray:
    values = np.asarray(array)
    if values.dtype == object:
        values = pd.to_numeric(pd.Series(values.ravel()), errors="coerce").to_numpy()
        values = values.reshape(np.shape(array))
    if values.dtype.kind in "iu" and (values.size == 0 or values.max() < 2**63):
        return values.astype(np.int64)
    if values.dtype.kind == "f" and np.isfinite(values).all():
        values = values.astype(np.float64)  # 2^63 overflows narrower floats
        whole = (values == np.floor(values)) & (np.abs(values) < 2.0**63)
        if whole.all():
            return values.astype(np.int64)
    raise DataError(
        f"{path}: expected integer ids, found dtype {np.asarray(array).dtype} with "
        "values that are not whole numbers or do not fit in 64 bits."
    )


def _load_array(path: Path, what: str) -> np.ndarray:
    return load_array(path, f"{what}: file")


def _feature_rows(features: dict[str, np.ndarray], root: Path) -> int | None:
    """The common row count of the feature arrays, or None when there are none."""
    _check_two_dimensional(features, root)
    rows = {modality: np.shape(array)[0] for modality, array in features.items()}
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{m}: {n}" for m, n in rows.items())
        raise DataError(
            f"{root}: the feature arrays disagree on the number of items ({listing}); "
            "every array needs one row per item."
        )
    return next(iter(rows.values()), None)


def _check_two_dimensional(features: dict[str, np.ndarray], source: Path) -> None:
    for modality, array in features.items():
        if np.ndim(array) != 2:
            raise DataError(
                f"{source}: the {modality} features have shape {np.shape(array)}; "
                "expected a 2-D (items, width) array with one row per item."
            )


def _index_count(ids: np.ndarray, kind: str, source: Path) -> int:
    """N for ids that are indices 0..N-1: the largest id plus one."""
    count = int(ids.max()) + 1
    _check_index_count(count, ids, kind, source)
    return count


def _check_index_count(count: int, ids: np.ndarray, kind: str, source: Path) -> None:
    # Every index below N becomes an id string, so one stray huge id would
    # allocate billions of them; far more indices than ids means they are not
    # indices at all.
    distinct = len(np.unique(ids))
    if count > max(2 * distinct, distinct + SPARE_INDICES):
        raise DataError(
            f"{source}: {count} {kind} indices (0..{count - 1}) for {distinct} "
            f"distinct {kind} ids; this layout numbers {kind}s 0..N-1, and these "
            "ids do not. Check the id columns, or import with the csv format, "
            "which maps any ids to indices."
        )


def _check_below(
    ids: np.ndarray, bound: int, kind: str, source: Path, from_features: bool
) -> None:
    bad = (ids < 0) | (ids >= bound)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        reason = ", the number of feature rows" if from_features else ""
        raise DataError(
            f"{source}: {kind} id {ids[row]} is out of range [0, {bound}){reason}; "
            f"{int(bad.sum())} interactions are affected. Ids must be indices "
            f"0..{bound - 1}: check the ids, or that the features cover every {kind}."
        )


def _indexed_dataset(
    name: str,
    users: np.ndarray,
    items: np.ndarray,
    split_names: np.ndarray,
    num_users: int,
    num_items: int,
    features: dict[str, np.ndarray],
    meta: dict,
) -> Dataset:
    """A dataset whose ids are the indices themselves (``"0"``, ``"1"``, ...)."""
    splits = {
        split: np.stack([users[mask], items[mask]], axis=1)
        for split in SPLITS
        for mask in [split_names == split]
    }
    return Dataset(
        name,
        np.arange(num_users).astype(str),
        np.arange(num_items).astype(str),
        splits,
        features,
        meta,
    )
