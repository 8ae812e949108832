"""The dataset: interactions split into train/valid/test plus named item modalities.

A dataset lives on disk as a directory (documented in ``docs/data-format.md``)::

    dataset.json        {"format": "mgat-dataset", "version": 1, "name": ...,
                         "modalities": {"visual": "visual.npy", ...}}
    interactions.csv    user,item,split[,timestamp][,rating]  (original ids)
    users.txt           optional: one user id per line, fixing the user order
    items.txt           optional: one item id per line, the row order of the
                        modality arrays (required when there are modalities)
    <modality>.npy      (I, D_m) float array per modality

Original ids are kept as strings; the model works on contiguous indices
(users ``0..U-1``, items ``0..I-1``) and every output maps back.

Shapes: U users, I items, D_m width of modality m.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from mgat.errors import DataError, UnknownIdError

if TYPE_CHECKING:  # reading a dataset does not import pandas (about 90 MiB)
    import pandas as pd

logger = logging.getLogger(__name__)

FORMAT_NAME = "mgat-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
COLUMNS = ("user", "item", "split")
INTERACTION_FILES = ("interactions.csv", "interactions.csv.gz", "interactions.tsv")
BUILTIN_DIR = Path(__file__).parent / "builtin"
# What reading a damaged or misnamed compressed file raises (gzip, zlib).
UNREADABLE = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class DatasetInfo:
    """Counts that describe a dataset; ``Dataset.info()`` computes them."""

    name: str
    num_users: int
    num_items: int
    num_interactions: dict[str, int]
    density: float
    users_without_train: int
    items_without_train: int
    modalities: dict[str, int]

    def table(self) -> str:
        """A short human-readable summary table."""
        n = self.num_interactions
        rows = [
            ("dataset", self.name),
            ("users", f"{self.num_users:,}"),
            ("items", f"{self.num_items:,}"),
            ("train / valid / test", " / ".join(f"{n[s]:,}" for s in SPLITS)),
            ("density", f"{self.density:.6f}"),
            ("users without train", f"{self.users_without_train:,}"),
            ("items without train (cold)", f"{self.items_without_train:,}"),
        ]
        if self.modalities:
            for name, width in self.modalities.items():
                rows.append((f"modality {name}", f"{width}-d"))
        else:
            rows.append(("modalities", "none (ID-only)"))
        width = max(len(key) for key, _ in rows)
        return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


@dataclass
class Dataset:
    """Interactions in three splits and per-item modality features.

    Args:
        name: A short name used in logs and run directories.
        user_ids: (U,) original user ids, index i is user i.
        item_ids: (I,) original item ids, index j is item j and row j of
            every modality array.
        splits: ``{"train", "valid", "test"}`` to (n, 2) int64 arrays of
            (user index, item index) pairs.
        features: modality name to an (I, D_m) float32 array.
        meta: free-form metadata (citation, provenance, source format).
        source: where it was loaded from: a built-in name or a directory path.

    Raises:
        DataError: when an index is out of range, a feature array has the
            wrong shape or non-finite values, a split is empty, or the splits
            overlap. Duplicate pairs within a split are dropped with a warning.
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    splits: dict[str, np.ndarray]
    features: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    source: str | None = None
    _matrices: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.user_ids = np.asarray(self.user_ids).astype(str)
        self.item_ids = np.asarray(self.item_ids).astype(str)
        for ids, kind in ((self.user_ids, "user"), (self.item_ids, "item")):
            _check_storable_ids(ids, kind)
            _check_unique_ids(ids, kind)
        self.splits = {s: self._checked_split(s) for s in SPLITS}
        _check_no_overlap(self.splits, self.num_items)
        self.features = {
            m: _checked_features(m, f, self.num_items) for m, f in self.features.items()
        }

    # ------------------------------------------------------------------ sizes
    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def train(self) -> np.ndarray:
        return self.splits["train"]

    @property
    def modalities(self) -> list[str]:
        return list(self.features)

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, path_or_name: str | Path) -> Dataset:
        """Load a dataset directory, or a built-in dataset by name (``tiktok``)."""
        path = Path(path_or_name)
        if not path.exists():
            builtin = BUILTIN_DIR / str(path_or_name)
            if (builtin / "dataset.json").exists():
                return _load_directory(builtin, source=str(path_or_name))
            else:
                names = ", ".join(builtin_names()) or "none"
                raise DataError(
                    f"no dataset at {str(path_or_name)!r}: it is neither a directory "
                    f"nor a built-in dataset (built-in: {names}). Pass a dataset "
                    "directory, or create one with `mgat data import`."
                )
        return _load_directory(path, source=str(path.resolve()))

    def save(self, directory: str | Path) -> Path:
        """Write the dataset in the documented directory format."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "interactions.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(COLUMNS)
            for split, pairs in self.splits.items():
                users, items = self.user_ids[pairs[:, 0]], self.item_ids[pairs[:, 1]]
                writer.writerows(
                    (u, i, split) for u, i in zip(users, items, strict=True)
                )
        (out / "users.txt").write_text("\n".join(self.user_ids) + "\n")
        (out / "items.txt").write_text("\n".join(self.item_ids) + "\n")
        for name, array in self.features.items():
            np.save(out / f"{name}.npy", array)
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.name,
            "modalities": {name: f"{name}.npy" for name in self.features},
            "meta": self.meta,
        }
        (out / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return out

    @classmethod
    def from_frame(
        cls,
        name: str,
        interactions: pd.DataFrame,
        features: dict[str, np.ndarray] | None = None,
        user_ids: list | np.ndarray | None = None,
        item_ids: list | np.ndarray | None = None,
        meta: dict | None = None,
        source: str = "interactions",
    ) -> Dataset:
        """Build a dataset from a frame with columns ``user``, ``item``, ``split``.

        Ids are taken as strings. Without ``user_ids``/``item_ids`` the order is
        the sorted order of the ids seen (numeric where every id is an integer).
        ``source`` names the file in error messages.
        """
        _require_columns(list(interactions.columns), COLUMNS, source)
        columns = {c: interactions[c].astype(str).to_numpy() for c in COLUMNS}
        return cls.from_columns(
            name, columns, features, user_ids, item_ids, meta, source
        )

    @classmethod
    def from_columns(
        cls,
        name: str,
        columns: dict[str, np.ndarray],
        features: dict[str, np.ndarray] | None = None,
        user_ids: list | np.ndarray | None = None,
        item_ids: list | np.ndarray | None = None,
        meta: dict | None = None,
        source: str = "interactions",
        lines: np.ndarray | None = None,
    ) -> Dataset:
        """``from_frame`` for (n,) string arrays ``user``, ``item`` and ``split``.

        ``lines`` gives each element's line in ``source`` for error messages;
        without it they name rows, counted from 1.
        """
        user, item, split = (np.asarray(columns[c], dtype=str) for c in COLUMNS)
        where = _Where(source, lines)
        bad_split = ~np.isin(split, SPLITS)
        if bad_split.any():
            row = int(np.flatnonzero(bad_split)[0])
            raise DataError(
                f"{where(row)} has split {str(split[row])!r}; "
                f"expected one of {', '.join(SPLITS)}. Fix the split column."
            )
        users = _ordered_ids(user, user_ids, "user")
        items = _ordered_ids(item, item_ids, "item")
        u = _index_of(users, user, "user", where)
        i = _index_of(items, item, "item", where)
        masks = {s: split == s for s in SPLITS}
        splits = {s: np.stack([u[m], i[m]], axis=1) for s, m in masks.items()}
        return cls(name, users, items, splits, dict(features or {}), dict(meta or {}))

    # ---------------------------------------------------------------- queries
    def info(self) -> DatasetInfo:
        counts = {s: len(p) for s, p in self.splits.items()}
        total = sum(counts.values())
        train = self.train
        return DatasetInfo(
            name=self.name,
            num_users=self.num_users,
            num_items=self.num_items,
            num_interactions=counts,
            density=total / max(1, self.num_users * self.num_items),
            users_without_train=self.num_users - len(np.unique(train[:, 0])),
            items_without_train=self.num_items - len(np.unique(train[:, 1])),
            modalities={m: int(f.shape[1]) for m, f in self.features.items()},
        )

    def summary(self) -> str:
        return self.info().table()

    def matrix(self, split: str = "train") -> sp.csr_matrix:
        """(U, I) binary CSR matrix of one split's interactions (built once)."""
        if split not in self._matrices:
            pairs = self.splits[split]
            data = np.ones(len(pairs), dtype=np.float32)
            shape = (self.num_users, self.num_items)
            matrix = sp.csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=shape)
            self._matrices[split] = matrix
        return self._matrices[split]

    def cold_items(self) -> np.ndarray:
        """Indices of items with no training interaction."""
        seen = np.zeros(self.num_items, dtype=bool)
        seen[self.train[:, 1]] = True
        return np.flatnonzero(~seen)

    def user_index(self, ids) -> np.ndarray:
        """Indices of original user ids; raises ``UnknownIdError`` for unknown ones."""
        return _lookup(self.user_ids, ids, "user")

    def item_index(self, ids) -> np.ndarray:
        """Indices of original item ids; raises ``UnknownIdError`` for unknown ones."""
        return _lookup(self.item_ids, ids, "item")

    # ------------------------------------------------------------- validation
    def _checked_split(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no {split!r} split; expected "
                f"{', '.join(SPLITS)}. Split the data first (see mgat.data.splits)."
            )
        pairs = np.asarray(self.splits[split])
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise DataError(
                f"{split} split: expected an (n, 2) array of (user, item) indices, "
                f"got shape {pairs.shape}."
            )
        if len(pairs) == 0:
            raise DataError(
                f"dataset {self.name!r}: the {split} split is empty. Every split needs "
                "at least one interaction; re-split the data (mgat.data.splits)."
            )
        if not np.issubdtype(pairs.dtype, np.integer):
            raise DataError(
                f"{split} split: expected integer indices, got dtype {pairs.dtype}."
            )
        pairs = pairs.astype(np.int64)
        for col, kind, size in (
            (0, "user", self.num_users),
            (1, "item", self.num_items),
        ):
            bad = (pairs[:, col] < 0) | (pairs[:, col] >= size)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{split} split row {row}: {kind} index {pairs[row, col]} is out "
                    f"of range [0, {size}). Every {kind} must be listed in the "
                    f"dataset's {kind} ids."
                )
        return _drop_duplicates(pairs, self.num_items, split)


# ---------------------------------------------------------------------- helpers
def builtin_names() -> list[str]:
    """Names of the datasets shipped inside the package."""
    return sorted(p.parent.name for p in BUILTIN_DIR.glob("*/dataset.json"))


def _load_directory(path: Path, source: str) -> Dataset:
    manifest_path = path / "dataset.json"
    if not manifest_path.exists():
        raise DataError(
            f"{path}: no dataset.json. A dataset directory needs dataset.json, "
            "interactions.csv and one .npy per modality (docs/data-format.md); "
            "`mgat data import` creates one from MMRec, research-code or CSV files."
        )
    manifest = _read_manifest(manifest_path)
    interactions_path = _find_interactions(path)
    columns, lines = _read_interactions(interactions_path)
    user_ids = _read_ids(path / "users.txt")
    item_ids = _read_ids(path / "items.txt")
    modalities = manifest.get("modalities", {})
    if modalities and item_ids is None:
        raise DataError(
            f"{path}: the dataset has modalities but no items.txt, so the row order "
            "of the feature arrays is unknown. Write items.txt with one item id per "
            "line in the order of the feature rows."
        )
    features = {
        name: _read_feature(path / filename, name)
        for name, filename in modalities.items()
    }
    dataset = Dataset.from_columns(
        manifest.get("name", path.name),
        columns,
        features,
        user_ids,
        item_ids,
        meta=manifest.get("meta", {}),
        source=str(interactions_path),
        lines=lines,
    )
    dataset.source = source
    return dataset


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(
            f"{path}: not valid JSON ({err}). Fix or regenerate it."
        ) from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DataError(
            f'{path}: expected a JSON object with "format": "{FORMAT_NAME}". '
            "Is this an mgat dataset directory?"
        )
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: dataset format version {manifest.get('version')!r} is not "
            f"supported (this mgat reads version {FORMAT_VERSION}). Re-import the data."
        )
    modalities = manifest.get("modalities", {})
    if not isinstance(modalities, dict) or not all(
        _inside_directory(name) for name in modalities.values()
    ):
        raise DataError(
            f'{path}: "modalities" must map each modality name to a .npy file in '
            f'the dataset directory, e.g. {{"visual": "visual.npy"}}; found '
            f"{_short(modalities)}."
        )
    for key, kind, word in (("name", str, "string"), ("meta", dict, "object")):
        if key in manifest and not isinstance(manifest[key], kind):
            raise DataError(
                f'{path}: "{key}" must be a JSON {word}; found {_short(manifest[key])}.'
            )
    return manifest


def _inside_directory(name) -> bool:
    """Whether ``name`` is a relative path that stays inside the directory."""
    if not isinstance(name, str) or not name.strip():
        return False
    relative = Path(name)
    return not relative.is_absolute() and ".." not in relative.parts


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _find_interactions(path: Path) -> Path:
    for name in INTERACTION_FILES:
        if (path / name).exists():
            return path / name
    raise DataError(
        f"{path}: no interactions file; expected one of {', '.join(INTERACTION_FILES)} "
        "with columns user,item,split."
    )


def _read_interactions(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The ``user``, ``item`` and ``split`` columns of a CSV (or TSV, or .gz) file,
    and the line each row was read from.

    Read with the standard library's csv module: every field is a string, blank
    lines are skipped, other columns are ignored.
    """
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:
        with _open_text(path) as handle:
            values, lines = _read_columns(path, handle, delimiter)
    except (csv.Error, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as CSV ({err}).") from err
    except UNREADABLE as err:
        message = f"{path}: cannot read the file ({err}); is it compressed as named?"
        raise DataError(message) from err
    columns = {name: np.array(column, dtype=str) for name, column in values.items()}
    return columns, np.array(lines, dtype=np.int64)


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: a byte-order mark, as some spreadsheet programs write, is dropped.
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _read_columns(
    path: Path, handle: io.TextIOBase, delimiter: str
) -> tuple[dict[str, list[str]], list[int]]:
    """The wanted columns' values, row by row, and the line of each row."""
    rows = csv.reader(handle, delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        raise DataError(
            f"{path}: the file is empty; expected a header user,item,split and rows."
        )
    _require_columns(header, COLUMNS, str(path))
    wanted = [header.index(c) for c in COLUMNS]
    values: dict[str, list[str]] = {c: [] for c in COLUMNS}
    lines: list[int] = []
    for row in rows:
        if not row:
            continue  # a blank line
        if len(row) > len(header):
            raise DataError(
                f"{path}: line {rows.line_num} has {len(row)} fields but the header "
                f"has {len(header)}. Quote fields that contain the delimiter."
            )
        fields = [row[k] if k < len(row) else "" for k in wanted]
        if not all(fields):
            raise DataError(
                f"{path}: line {rows.line_num} has an empty user, item or split "
                "field. Fill it in or delete the line."
            )
        for name, value in zip(COLUMNS, fields, strict=True):
            values[name].append(value)
        lines.append(rows.line_num)
    return values, lines


class _Where:
    """Names row ``i`` of a source in messages: its line in a file, or its row."""

    def __init__(self, source: str, lines: np.ndarray | None) -> None:
        self.source, self.lines = source, lines

    def __call__(self, row: int) -> str:
        if self.lines is None:
            return f"{self.source}: row {row + 1}"
        return f"{self.source}: line {int(self.lines[row])}"


def _read_ids(path: Path) -> np.ndarray | None:
    if not path.exists():
        return None
    ids = [line.strip() for line in path.read_text().splitlines()]
    return np.array([i for i in ids if i], dtype=str)


def _read_feature(path: Path, name: str) -> np.ndarray:
    return load_array(path, f"modality {name!r}: feature file")


def load_array(path: Path, what: str) -> np.ndarray:
    """A plain (pickle-free) .npy array; ``DataError`` naming ``what`` otherwise."""
    if not path.is_file():
        raise DataError(
            f"{what} {path} does not exist. Check the path, or leave the modality out."
        )
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(
            f"{what} {path}: cannot read it as a plain .npy array ({err}). Save it "
            "with numpy.save as a 2-D number array."
        ) from err


def _require_columns(header: list, columns, source: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; found "
            f"{', '.join(map(str, header)) or 'none'}. The header must "
            f"name {', '.join(columns)}."
        )


def _ordered_ids(column: np.ndarray, given, kind: str) -> np.ndarray:
    if given is not None:
        ids = np.asarray(given).astype(str)
        _check_unique_ids(ids, kind)  # before they index the interactions
        return ids
    unique = np.unique(column)  # sorted by code point, as sorted() sorts strings
    if all(s.removeprefix("-").isdecimal() for s in unique):  # what int() reads
        return np.array(sorted(unique, key=int), dtype=str)
    return unique.astype(str)


def _positions(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(n,) index of each of ``ids`` in the unique ``known``; -1 where absent."""
    if len(known) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    order = np.argsort(known)
    ranked = known[order]
    slot = np.searchsorted(ranked, ids).clip(max=len(known) - 1)
    return np.where(ranked[slot] == ids, order[slot], -1).astype(np.int64)


def _index_of(ids: np.ndarray, column: np.ndarray, kind: str, where) -> np.ndarray:
    index = _positions(ids, column)
    unknown = index < 0
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise DataError(
            f"{where(row)} has {kind} id {str(column[row])!r}, which is not in "
            f"{kind}s.txt ({unknown.sum()} such rows). Add the id to {kind}s.txt "
            "or remove the rows."
        )
    return index


def _lookup(known: np.ndarray, ids, kind: str) -> np.ndarray:
    ids = np.atleast_1d(np.asarray(ids)).astype(str)
    index = _positions(known, ids)
    if (index < 0).any():
        bad = ids[index < 0][:5].tolist()
        raise UnknownIdError(
            f"unknown {kind} id(s) {bad}: not in the dataset's {len(known)} {kind}s. "
            f"Use ids as they appear in the dataset's {kind}s.txt."
        )
    return index.astype(np.int64)


def _check_storable_ids(ids: np.ndarray, kind: str) -> None:
    # users.txt and items.txt hold one stripped id per line.
    if ids.ndim != 1:
        raise DataError(
            f"{kind} ids: expected a flat list of ids, got shape {ids.shape}."
        )
    bad = (np.char.strip(ids) != ids) | (np.char.str_len(ids) == 0)
    bad |= (np.char.find(ids, "\n") >= 0) | (np.char.find(ids, "\r") >= 0)
    if bad.any():
        raise DataError(
            f"{kind} id {ids[bad][0]!r} cannot be stored: ids are kept one per "
            f"line in {kind}s.txt, so none may be empty, start or end with "
            f"spaces, or hold a line break ({int(bad.sum())} such ids). Strip or "
            "replace them."
        )


def _check_unique_ids(ids: np.ndarray, kind: str) -> None:
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(
            f"{kind} ids must be unique; {unique[counts > 1][:5].tolist()} appear more "
            f"than once. Remove the repeated lines from {kind}s.txt."
        )


def _drop_duplicates(pairs: np.ndarray, num_items: int, split: str) -> np.ndarray:
    keys = pairs[:, 0] * num_items + pairs[:, 1]
    _, first = np.unique(keys, return_index=True)
    if len(first) < len(pairs):
        logger.warning(
            "%s split: dropped %d duplicate (user, item) pairs, kept the first of each",
            split,
            len(pairs) - len(first),
        )
        return pairs[np.sort(first)]
    return pairs


def _check_no_overlap(splits: dict[str, np.ndarray], num_items: int) -> None:
    keys = {s: p[:, 0] * num_items + p[:, 1] for s, p in splits.items()}
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        common = np.intersect1d(keys[a], keys[b])
        if len(common):
            user, item = divmod(int(common[0]), num_items)
            raise DataError(
                f"the {a} and {b} splits share {len(common)} (user, item) pairs, e.g. "
                f"user index {user}, item index {item}. A pair may be in one split "
                "only: remove it from one of them."
            )


def _checked_features(name: str, array: np.ndarray, num_items: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise DataError(
            f"modality {name!r}: expected a 2-D (items, width) array, got shape "
            f"{array.shape}. Reshape it to one row per item."
        )
    if array.shape[0] != num_items:
        raise DataError(
            f"modality {name!r}: {array.shape[0]} feature rows but the dataset has "
            f"{num_items} items. There must be one row per item, in items.txt order."
        )
    if array.shape[1] == 0:
        raise DataError(
            f"modality {name!r}: the features have width 0. Give each item at least "
            "one value, or leave the modality out."
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataError(
            f"modality {name!r}: expected real numbers, got dtype {array.dtype}."
        )
    array = array.astype(np.float32)  # float16 sums overflow: widen before use
    finite = np.isfinite(array)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise DataError(
            f"modality {name!r}: {len(rows)} item rows contain NaN or infinite values "
            f"(first: row {rows[0]}). Impute or drop them before loading, e.g. with "
            "the modality's column means."
        )
    return array
