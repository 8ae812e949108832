"""Reading an items table, writing feature arrays and their sidecars.

Every extractor reads one column of an items table (CSV, or TSV by suffix),
computes one vector per row and writes an (I, D) float32 ``.npy`` whose row j
belongs to row j of the table. Beside it, ``<out>.json`` records how the
array was made, so a feature file can be traced back to its extractor.

Shapes: I items (table rows), D feature width.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from mgat.errors import ConfigError, DataError
from mgat.lazy import LazyModule

pd = LazyModule("pandas")

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = "mgat-features"
# How many bad rows an error message lists before it summarises the rest.
LISTED_ROWS = 10

Progress = Callable[..., Iterable]


def read_column(items: str | Path, column: str) -> pd.Series:
    """One column of an items table as strings, missing cells as NaN.

    Args:
        items: a CSV file (``.tsv`` or ``.tab``: tab-separated) with a header.
        column: the header of the column to read.

    Raises:
        DataError: when the file is missing, empty or lacks the column.
    """
    path = Path(items)
    if not path.is_file():
        raise DataError(
            f"items table {path} does not exist; expected a CSV with a header and "
            "one row per item."
        )
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as err:
        raise DataError(
            f"items table {path} is empty; expected a header and one row per item."
        ) from err
    if column not in frame.columns:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(
            f"items table {path} has no column {column!r}; found {found}. Pass one "
            "of these with --column."
        )
    if len(frame) == 0:
        raise DataError(f"items table {path} has a header but no rows.")
    values = frame[column].str.strip()
    return values.where(values != "", np.nan)


def resolve_paths(values: pd.Series, items: str | Path) -> list[Path | None]:
    """File paths of a column; relative ones are taken from the table's folder."""
    base = Path(items).parent
    return [
        None if pd.isna(value) else _resolved(Path(value), base) for value in values
    ]


def _resolved(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path


def batches(count: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` rows covering ``range(count)``."""
    if isinstance(size, bool) or int(size) < 1:
        raise ConfigError(f"batch size must be a positive integer, got {size!r}.")
    return [slice(start, start + size) for start in range(0, count, int(size))]


def with_progress(iterable: Sequence, progress: Progress | None, desc: str) -> Iterable:
    """Wrap ``iterable`` in the caller's progress-bar factory, if any."""
    if progress is None:
        return iterable
    return progress(iterable, total=len(iterable), desc=desc)


def assemble(
    rows: Sequence[np.ndarray | None],
    failures: dict[int, str],
    impute_mean: bool,
    what: str,
) -> tuple[np.ndarray, list[int]]:
    """Stack per-row vectors; fail on bad rows, or fill them with the mean.

    Args:
        rows: one vector per table row; None where the row failed.
        failures: row index to the reason it failed.
        impute_mean: replace failed rows by the mean of the good ones instead
            of raising.
        what: the kind of input (``image``, ``audio file``) for messages.

    Returns:
        The (I, D) float32 array and the indices of the imputed rows.

    Raises:
        DataError: when a row failed and ``impute_mean`` is off, or when every
            row failed.
    """
    bad = sorted(failures)
    good = [row for row in rows if row is not None]
    if not good:
        raise DataError(
            f"none of the {len(rows)} {what}s could be read, so there is nothing "
            f"to impute from.\n{describe_failures(failures)}"
        )
    if bad and not impute_mean:
        raise DataError(
            f"{len(bad)} of {len(rows)} {what}s could not be read (rows are 0-based "
            f"data rows; line = row + 2):\n{describe_failures(failures)}\nFix or "
            "remove these rows, or pass --impute-mean (impute_mean=True) to give "
            "them the mean feature vector."
        )

    stacked = np.stack(good).astype(np.float32)
    mean = stacked.mean(axis=0)
    array = np.stack([mean if row is None else row for row in rows])
    if bad:
        logger.warning(
            "%d of %d %ss could not be read and got the mean vector (rows %s)",
            len(bad),
            len(rows),
            what,
            _listed(bad),
        )
    return array.astype(np.float32), bad


def describe_failures(failures: dict[int, str]) -> str:
    """One line per failed row, the first ``LISTED_ROWS`` of them."""
    lines = [f"  row {row}: {failures[row]}" for row in sorted(failures)[:LISTED_ROWS]]
    if len(failures) > LISTED_ROWS:
        lines.append(f"  ... and {len(failures) - LISTED_ROWS} more")
    return "\n".join(lines)


def _listed(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:LISTED_ROWS]))
    return shown + (", ..." if len(rows) > LISTED_ROWS else "")


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed versions of the named distributions (None when absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def checked_output(out: str | Path) -> Path:
    """The output path, which must name a ``.npy`` file."""
    path = Path(out)
    if path.suffix != ".npy":
        raise ConfigError(
            f"--out must name a .npy file, e.g. features/{path.name or 'text'}.npy; "
            f"got {str(out)!r}."
        )
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; name a .npy file inside it.")
    return path


def sidecar_path(out: str | Path) -> Path:
    """Where the JSON description of ``out`` lives: ``<out>.json``."""
    path = Path(out)
    return path.with_name(path.name + ".json")


def write_features(array: np.ndarray, out: str | Path, description: dict) -> Path:
    """Write ``array`` as float32 ``.npy`` and its ``<out>.json`` sidecar.

    Both files are written under temporary names and renamed, so a failure
    leaves no half-written pair behind.

    Args:
        array: (I, D) features in items-table row order.
        out: the ``.npy`` path to write; parent folders are created.
        description: extractor, model, parameters, versions... stored in the
            sidecar together with the row count and width.

    Returns:
        The ``.npy`` path.
    """
    path = checked_output(out)
    array = np.ascontiguousarray(array, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {
        "format": SIDECAR_FORMAT,
        **description,
        "rows": int(array.shape[0]),
        "width": int(array.shape[1]),
        "dtype": "float32",
    }

    staged_array = path.with_name(f".{path.name}.partial")
    staged_sidecar = path.with_name(f".{path.name}.json.partial")
    try:
        with open(staged_array, "wb") as handle:
            np.save(handle, array)
        staged_sidecar.write_text(json.dumps(sidecar, indent=2) + "\n")
        os.replace(staged_array, path)
        os.replace(staged_sidecar, sidecar_path(path))
    finally:
        staged_array.unlink(missing_ok=True)
        staged_sidecar.unlink(missing_ok=True)
    logger.info(
        "wrote %s features %s to %s", sidecar.get("extractor"), array.shape, path
    )
    return path


def source_description(items: str | Path, column: str) -> dict:
    """The sidecar's record of where the inputs came from."""
    return {"items": str(Path(items).resolve()), "column": column}


def require(module: str, distribution: str) -> None:
    """Fail with an install hint when an optional dependency is missing."""
    try:
        __import__(module)
    except ImportError as err:
        raise ConfigError(
            f"this extractor needs the {distribution!r} package, which is not "
            f"installed ({err}). Install the extras: pip install 'mgat[features]'."
        ) from err
