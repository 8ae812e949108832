"""The dataset directory format: loading, validation and the error messages."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mgat.data import Dataset
from mgat.errors import DataError, UnknownIdError


@pytest.fixture
def saved(tmp_path, truth):
    """A valid dataset directory written by ``Dataset.save``."""
    dataset = Dataset(
        "toy",
        np.arange(truth["num_users"]),
        np.arange(truth["num_items"]),
        truth["splits"],
        {"visual": truth["visual"]},
    )
    return dataset.save(tmp_path / "toy")


def make(truth, **changes) -> Dataset:
    fields = {
        "name": "toy",
        "user_ids": np.arange(truth["num_users"]),
        "item_ids": np.arange(truth["num_items"]),
        "splits": dict(truth["splits"]),
        "features": {"visual": truth["visual"]},
    }
    return Dataset(**{**fields, **changes})


def test_load_round_trip(saved, truth):
    dataset = Dataset.load(saved)
    assert dataset.info().num_interactions == {"train": 18, "valid": 6, "test": 6}
    np.testing.assert_array_equal(dataset.features["visual"], truth["visual"])


# -------------------------------------------------------- malformed inputs
def test_malformed_manifest(saved):
    (saved / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON.*Fix or regenerate"):
        Dataset.load(saved)


def test_manifest_of_another_format(saved):
    (saved / "dataset.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match='expected a JSON object with "format"'):
        Dataset.load(saved)


def test_manifest_of_another_version(saved):
    manifest = json.loads((saved / "dataset.json").read_text())
    (saved / "dataset.json").write_text(json.dumps({**manifest, "version": 9}))
    with pytest.raises(DataError, match="version 9 is not supported"):
        Dataset.load(saved)


def test_missing_manifest(saved):
    (saved / "dataset.json").unlink()
    with pytest.raises(DataError, match="no dataset.json.*mgat data import"):
        Dataset.load(saved)


def test_missing_feature_file(saved):
    (saved / "visual.npy").unlink()
    with pytest.raises(DataError, match="'visual': feature file .* does not exist"):
        Dataset.load(saved)


def test_missing_items_file_with_modalities(saved):
    (saved / "items.txt").unlink()
    with pytest.raises(DataError, match="modalities but no items.txt"):
        Dataset.load(saved)


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="neither a directory nor a built-in.*tiktok"):
        Dataset.load("no-such-dataset")


def test_interaction_with_unknown_item(saved):
    with (saved / "interactions.csv").open("a") as handle:
        handle.write("0,99,train\n")
    with pytest.raises(DataError, match="item id '99', which is not in items.txt"):
        Dataset.load(saved)


def test_unknown_id_error_names_the_line_counting_blank_lines(saved):
    with (saved / "interactions.csv").open("a") as handle:
        handle.write("\n\n0,99,train\n")
    lines = (saved / "interactions.csv").read_text().count("\n")
    with pytest.raises(DataError, match=f"line {lines} has item id '99'"):
        Dataset.load(saved)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("0,1,train,extra", "has 4 fields but the header has 3"),
        ("0,,train", "has an empty user, item or split field"),
        ("0,1", "has an empty user, item or split field"),
        ("0,1,holdout", "has split 'holdout'; expected one of train, valid, test"),
    ],
)
def test_malformed_rows_are_named_by_line(saved, row, message):
    path = saved / "interactions.csv"
    lines = path.read_text().count("\n") + 1
    with path.open("a") as handle:
        handle.write(row + "\n")
    with pytest.raises(DataError, match=f"line {lines}.* {message}"):
        Dataset.load(saved)


def test_quoted_fields_byte_order_mark_and_extra_columns(saved):
    path = saved / "interactions.csv"
    rows = path.read_text().splitlines()[1:]
    body = "".join(f'{row},2020-01-01,"a, b"\n' for row in rows)
    path.write_text("\ufeffuser,item,split,timestamp,note\n" + body, encoding="utf-8")
    assert Dataset.load(saved).info().num_interactions["train"] == 18

    # A quoted id may hold the delimiter.
    (saved / "users.txt").unlink()
    path.write_text('user,item,split\n"u,1",0,train\n' + "\n".join(rows) + "\n")
    assert "u,1" in Dataset.load(saved).user_ids


def test_gzipped_interactions_load_like_plain_ones(saved):
    plain = Dataset.load(saved)
    path = saved / "interactions.csv"
    with gzip.open(saved / "interactions.csv.gz", "wt") as handle:
        handle.write(path.read_text())
    path.unlink()
    packed = Dataset.load(saved)
    for split in plain.splits:
        np.testing.assert_array_equal(packed.splits[split], plain.splits[split])


def test_not_utf8_is_a_parse_error(saved):
    (saved / "interactions.csv").write_bytes(b"user,item,split\n\xff\xfe,0,train\n")
    with pytest.raises(DataError, match="cannot parse as CSV"):
        Dataset.load(saved)


def test_loading_and_the_command_line_do_not_import_pandas(saved):
    code = (
        "import sys, mgat.cli; from mgat.data import Dataset; "
        f"Dataset.load({str(saved)!r}); "
        "print(sorted({'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_duplicates_in_a_saved_split_are_dropped(saved, caplog):
    frame = pd.read_csv(saved / "interactions.csv")
    pd.concat([frame, frame.iloc[:3]]).to_csv(saved / "interactions.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="mgat.data.dataset"):
        dataset = Dataset.load(saved)
    assert "dropped 3 duplicate (user, item) pairs" in caplog.text
    assert len(dataset.train) == 18


# ---------------------------------------------------------- construction
def test_index_out_of_range(truth):
    splits = dict(truth["splits"], test=np.array([[0, truth["num_items"]]]))
    with pytest.raises(DataError, match=r"item index 8 is out of range \[0, 8\)"):
        make(truth, splits=splits)


def test_feature_rows_do_not_match_items(truth):
    with pytest.raises(DataError, match="7 feature rows but the dataset has 8 items"):
        make(truth, features={"visual": truth["visual"][:-1]})


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features(truth, bad):
    visual = truth["visual"].copy()
    visual[5] = bad
    with pytest.raises(DataError, match=r"1 item rows contain NaN or infinite.*row 5"):
        make(truth, features={"visual": visual})


def test_overlapping_splits(truth):
    valid = np.concatenate([truth["splits"]["valid"], truth["splits"]["train"][:2]])
    with pytest.raises(DataError, match="train and valid splits share 2"):
        make(truth, splits=dict(truth["splits"], valid=valid))


def test_empty_split(truth):
    empty = np.empty((0, 2), dtype=np.int64)
    with pytest.raises(DataError, match="the test split is empty"):
        make(truth, splits=dict(truth["splits"], test=empty))


def test_missing_split(truth):
    splits = {k: v for k, v in truth["splits"].items() if k != "valid"}
    with pytest.raises(DataError, match="has no 'valid' split"):
        make(truth, splits=splits)


def test_repeated_ids(truth):
    with pytest.raises(DataError, match="user ids must be unique"):
        make(truth, user_ids=[0, 1, 2, 3, 4, 4])


def test_unknown_id_lookup(truth):
    with pytest.raises(UnknownIdError, match=r"unknown item id\(s\) \['x'\]"):
        make(truth).item_index(["x"])
