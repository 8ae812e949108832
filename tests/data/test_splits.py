"""Splitters and the k-core filter on small synthetic interaction frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgat.data.splits import (
    k_core,
    leave_last_out,
    random_split,
    split_interactions,
    temporal_split,
)
from mgat.errors import ConfigError, DataError


def split_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """(users, 3) counts of train/valid/test rows per user."""
    table = pd.crosstab(frame["user"], frame["split"])
    return table.reindex(columns=["train", "valid", "test"], fill_value=0)


# ------------------------------------------------------------------ random
def test_random_split_cuts_each_user_by_the_ratios(unsplit_frame):
    split = random_split(unsplit_frame, (0.8, 0.1, 0.1), seed=0)
    counts = split_counts(split)
    assert (counts["train"] == 8).all()
    assert (counts["valid"] == 1).all() and (counts["test"] == 1).all()


def test_random_split_keeps_rows_and_order(unsplit_frame):
    split = random_split(unsplit_frame, seed=1)
    pd.testing.assert_frame_equal(split.drop(columns="split"), unsplit_frame)
    assert set(split["split"]) == {"train", "valid", "test"}
    assert "split" not in unsplit_frame.columns  # the input is untouched


def test_random_split_is_deterministic_under_a_seed(unsplit_frame):
    first = random_split(unsplit_frame, seed=11)["split"]
    assert first.equals(random_split(unsplit_frame, seed=11)["split"])
    assert not first.equals(random_split(unsplit_frame, seed=12)["split"])


def test_random_split_small_users_keep_a_training_interaction():
    frame = pd.DataFrame({"user": [0, 1, 1, 2, 2, 2], "item": [0, 0, 1, 0, 1, 2]})
    split = random_split(frame, (0.4, 0.3, 0.3), seed=0)
    counts = split_counts(split)
    assert counts.loc[0].tolist() == [1, 0, 0]
    assert (counts["train"] >= 1).all()
    assert counts.loc[2].tolist() == [1, 1, 1]


@settings(max_examples=40, deadline=None)
@given(
    degrees=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    held_out=st.tuples(st.floats(0, 0.4), st.floats(0, 0.4)),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_split_contract(degrees, held_out, seed):
    ratios = (1 - sum(held_out), *held_out)
    users = np.repeat(np.arange(len(degrees)), degrees)
    items = np.concatenate([np.arange(d) for d in degrees])
    frame = pd.DataFrame({"user": users, "item": items})

    counts = split_counts(random_split(frame, ratios, seed))
    size = np.array(degrees)
    assert (counts.sum(axis=1).to_numpy() == size).all()
    assert (counts["train"] >= 1).all()
    # Each held-out count is the rounded share, or less when it would take
    # the user's only training interaction.
    for column, ratio in (("valid", held_out[0]), ("test", held_out[1])):
        assert (counts[column].to_numpy() <= np.floor(size * ratio + 0.5)).all()


# ---------------------------------------------------------- leave-last-out
def test_leave_last_out_holds_out_the_latest(unsplit_frame):
    split = leave_last_out(unsplit_frame)
    ordered = split.sort_values("timestamp")
    last = ordered.groupby("user").nth(-1)
    second = ordered.groupby("user").nth(-2)
    assert (last["split"] == "test").all()
    assert (second["split"] == "valid").all()
    assert (split_counts(split)["train"] == 8).all()


def test_leave_last_out_breaks_ties_by_row_order():
    frame = pd.DataFrame({"user": 0, "item": [4, 5, 6, 7], "timestamp": 1})
    split = leave_last_out(frame)
    assert split["split"].tolist() == ["train", "train", "valid", "test"]


def test_leave_last_out_small_users_stay_in_train():
    frame = pd.DataFrame(
        {"user": [0, 0, 1, 1, 1], "item": [0, 1, 0, 1, 2], "timestamp": [5, 1, 3, 2, 1]}
    )
    split = leave_last_out(frame)
    assert split["split"].tolist() == ["train", "train", "test", "valid", "train"]


def test_leave_last_out_min_interactions():
    frame = pd.DataFrame({"user": 0, "item": [0, 1, 2], "timestamp": [0, 1, 2]})
    assert (leave_last_out(frame, min_interactions=4)["split"] == "train").all()
    with pytest.raises(ConfigError, match="must be at least 3"):
        leave_last_out(frame, min_interactions=2)


def test_leave_last_out_with_dates():
    frame = pd.DataFrame(
        {
            "user": 0,
            "item": [0, 1, 2],
            "timestamp": pd.to_datetime(["2024-03-01", "2023-01-01", "2024-01-01"]),
        }
    )
    assert leave_last_out(frame)["split"].tolist() == ["test", "train", "valid"]


# ---------------------------------------------------------------- temporal
def test_temporal_split_cuts_the_timeline(unsplit_frame):
    split = temporal_split(unsplit_frame, (0.8, 0.1, 0.1))
    assert split["split"].value_counts().to_dict() == {
        "train": 240,
        "valid": 30,
        "test": 30,
    }
    span = split.groupby("split")["timestamp"].agg(["min", "max"])
    assert span.loc["train", "max"] < span.loc["valid", "min"]
    assert span.loc["valid", "max"] < span.loc["test", "min"]


def test_temporal_split_never_divides_an_instant():
    frame = pd.DataFrame({"user": range(10), "item": 0, "timestamp": [1] * 5 + [2] * 5})
    split = temporal_split(frame, (0.7, 0.2, 0.1))
    assert split.groupby("timestamp")["split"].nunique().eq(1).all()


def test_temporal_split_without_valid_or_test():
    frame = pd.DataFrame({"user": range(4), "item": 0, "timestamp": range(4)})
    assert (temporal_split(frame, (1.0, 0.0, 0.0))["split"] == "train").all()


# ------------------------------------------------------ errors and dispatch
@pytest.mark.parametrize("splitter", [leave_last_out, temporal_split])
def test_time_splits_need_a_timestamp_column(unsplit_frame, splitter):
    frame = unsplit_frame.drop(columns="timestamp")
    with pytest.raises(DataError, match="missing column.*timestamp; found user, item"):
        splitter(frame)


def test_missing_timestamps(unsplit_frame):
    frame = unsplit_frame.astype({"timestamp": float})
    frame.loc[4, "timestamp"] = np.nan
    with pytest.raises(DataError, match="1 interactions have no timestamp.*row 4"):
        temporal_split(frame)


def test_text_timestamps(unsplit_frame):
    frame = unsplit_frame.assign(timestamp="monday")
    with pytest.raises(DataError, match="expected numbers .* or dates"):
        leave_last_out(frame)


def test_missing_user_column(unsplit_frame):
    with pytest.raises(DataError, match="missing column.*user; found item"):
        random_split(unsplit_frame.drop(columns="user"))


@pytest.mark.parametrize(
    "ratios", [(0.8, 0.1), (0.8, 0.3, 0.1), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)]
)
def test_bad_ratios(unsplit_frame, ratios):
    with pytest.raises(ConfigError, match="three non-negative fractions"):
        random_split(unsplit_frame, ratios)


def test_split_interactions_dispatches(unsplit_frame):
    by_name = split_interactions(unsplit_frame, "leave-last-out")
    assert by_name.equals(leave_last_out(unsplit_frame))
    with pytest.raises(ConfigError, match="unknown split method 'weekly'; expected"):
        split_interactions(unsplit_frame, "weekly")


# ------------------------------------------------------------------ k-core
def reference_k_core(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """The definition, one filtering pass at a time."""
    while True:
        user_degree = frame["user"].map(frame["user"].value_counts())
        item_degree = frame["item"].map(frame["item"].value_counts())
        kept = frame[(user_degree >= k) & (item_degree >= k)]
        if len(kept) == len(frame):
            return kept.reset_index(drop=True)
        frame = kept


@pytest.mark.parametrize("k", [2, 3, 5])
def test_k_core_matches_the_definition(k):
    rng = np.random.default_rng(k)
    frame = pd.DataFrame(
        {"user": rng.zipf(1.6, 600) % 80, "item": rng.zipf(1.4, 600) % 120}
    ).drop_duplicates(ignore_index=True)

    core = k_core(frame, k)
    pd.testing.assert_frame_equal(core, reference_k_core(frame, k))
    assert core["user"].value_counts().min() >= k
    assert core["item"].value_counts().min() >= k


def test_k_core_needs_more_than_one_round():
    # Round one removes user 3 and item 4; only then do user 2 and item 3
    # fall below two interactions.
    frame = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2, 3], "item": [1, 2, 1, 2, 3, 4, 3]})
    core = k_core(frame, 2)
    assert core["user"].tolist() == [0, 0, 1, 1]
    assert core["item"].tolist() == [1, 2, 1, 2]


def test_k_core_of_one_keeps_everything(unsplit_frame):
    pd.testing.assert_frame_equal(k_core(unsplit_frame, 1), unsplit_frame)


def test_k_core_that_removes_everything(unsplit_frame):
    with pytest.raises(DataError, match="k=100 removed all 300 interactions"):
        k_core(unsplit_frame, 100)


@pytest.mark.parametrize("k", [0, -2, 2.5, True])
def test_k_core_bad_k(unsplit_frame, k):
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        k_core(unsplit_frame, k)
