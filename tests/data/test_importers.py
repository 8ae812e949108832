"""Importers: round trips through the dataset format, and every malformed input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgat.data import (
    Dataset,
    import_csv,
    import_dataset,
    import_mmrec,
    import_research,
)
from mgat.errors import ConfigError, DataError

NUM_USERS, NUM_ITEMS = 6, 8  # the sizes of the conftest sources


def id_pairs(dataset: Dataset, split: str) -> set[tuple[str, str]]:
    pairs = dataset.splits[split]
    users, items = dataset.user_ids[pairs[:, 0]], dataset.item_ids[pairs[:, 1]]
    return set(zip(users.tolist(), items.tolist(), strict=True))


def truth_pairs(truth: dict, split: str, user="{}", item="{}") -> set:
    return {
        (user.format(u), item.format(i)) for u, i in truth["splits"][split].tolist()
    }


def assert_round_trip(dataset: Dataset, tmp_path: Path) -> Dataset:
    """Save, load back, and check that nothing changed."""
    loaded = Dataset.load(dataset.save(tmp_path / "saved"))
    np.testing.assert_array_equal(loaded.user_ids, dataset.user_ids)
    np.testing.assert_array_equal(loaded.item_ids, dataset.item_ids)
    for split in ("train", "valid", "test"):
        assert id_pairs(loaded, split) == id_pairs(dataset, split)
    assert loaded.modalities == dataset.modalities
    for modality, array in dataset.features.items():
        np.testing.assert_array_equal(loaded.features[modality], array)
    return loaded


# ------------------------------------------------------------------- MMRec
def test_mmrec_round_trip(mmrec_dir, truth, tmp_path):
    dataset = import_mmrec(mmrec_dir)

    assert dataset.name == "toy"
    assert (dataset.num_users, dataset.num_items) == (NUM_USERS, NUM_ITEMS)
    for split in ("train", "valid", "test"):
        assert id_pairs(dataset, split) == truth_pairs(truth, split)
    assert dataset.modalities == ["visual", "acoustic"]
    np.testing.assert_array_equal(dataset.features["visual"], truth["visual"])
    assert_round_trip(dataset, tmp_path)


def test_mmrec_without_features_counts_items_from_ids(mmrec_dir):
    for path in mmrec_dir.glob("*.npy"):
        path.unlink()
    dataset = import_mmrec(mmrec_dir)
    assert dataset.modalities == []
    assert dataset.num_items == NUM_ITEMS


def test_mmrec_several_inter_files_need_a_name(mmrec_dir):
    shutil.copy(mmrec_dir / "toy.inter", mmrec_dir / "other.inter")
    with pytest.raises(DataError, match="several .inter files.*pass the dataset name"):
        import_mmrec(mmrec_dir)
    assert import_mmrec(mmrec_dir, name="other").name == "other"


def test_mmrec_unknown_name(mmrec_dir):
    with pytest.raises(DataError, match="no nope.inter"):
        import_mmrec(mmrec_dir, name="nope")


def test_mmrec_without_inter_file(tmp_path):
    with pytest.raises(DataError, match="no .inter file.*userID, itemID, x_label"):
        import_mmrec(tmp_path)


def test_mmrec_missing_column(mmrec_dir):
    frame = pd.read_csv(mmrec_dir / "toy.inter", sep="\t").drop(columns="x_label")
    frame.to_csv(mmrec_dir / "toy.inter", sep="\t", index=False)
    with pytest.raises(DataError, match="missing column.*x_label; found userID"):
        import_mmrec(mmrec_dir)


def test_mmrec_item_beyond_feature_rows(mmrec_dir):
    np.save(mmrec_dir / "image_feat.npy", np.zeros((NUM_ITEMS - 2, 4)))
    np.save(mmrec_dir / "audio_feat.npy", np.zeros((NUM_ITEMS - 2, 3)))
    with pytest.raises(DataError, match=r"out of range \[0, 6\), the number of feat"):
        import_mmrec(mmrec_dir)


def test_mmrec_feature_arrays_disagree(mmrec_dir):
    np.save(mmrec_dir / "audio_feat.npy", np.zeros((NUM_ITEMS + 1, 3)))
    with pytest.raises(DataError, match="disagree on the number of items"):
        import_mmrec(mmrec_dir)


def test_mmrec_negative_and_fractional_ids(mmrec_dir):
    frame = pd.read_csv(mmrec_dir / "toy.inter", sep="\t")
    frame.loc[2, "userID"] = -1
    frame.to_csv(mmrec_dir / "toy.inter", sep="\t", index=False)
    with pytest.raises(DataError, match="line 4 has user id '-1'; expected a non-neg"):
        import_mmrec(mmrec_dir)


def test_mmrec_unknown_split_label(mmrec_dir):
    frame = pd.read_csv(mmrec_dir / "toy.inter", sep="\t")
    frame.loc[0, "x_label"] = 3
    frame.to_csv(mmrec_dir / "toy.inter", sep="\t", index=False)
    with pytest.raises(DataError, match=r"line 2 has split label .*expected 0 \(tr"):
        import_mmrec(mmrec_dir)


def test_mmrec_nan_features(mmrec_dir, truth):
    visual = truth["visual"].copy()
    visual[3, 1] = np.nan
    np.save(mmrec_dir / "image_feat.npy", visual)
    with pytest.raises(DataError, match="'visual': 1 item rows contain NaN or inf"):
        import_mmrec(mmrec_dir)


def test_import_of_a_file_instead_of_a_directory(mmrec_dir):
    with pytest.raises(DataError, match="expected a directory, but .* is a file"):
        import_mmrec(mmrec_dir / "toy.inter")


# ---------------------------------------------------------------- research
def test_research_round_trip(research_dir, truth, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mgat.data.importers"):
        dataset = import_research(research_dir)

    assert "unpickling a legacy object array" in caplog.text
    assert (dataset.num_users, dataset.num_items) == (NUM_USERS, NUM_ITEMS)
    for split in ("train", "valid", "test"):
        assert id_pairs(dataset, split) == truth_pairs(truth, split)
    assert sorted(dataset.modalities) == ["acoustic", "visual"]
    np.testing.assert_array_equal(dataset.features["acoustic"], truth["acoustic"])
    assert_round_trip(dataset, tmp_path)


def test_research_short_file_names_and_plain_rows(research_dir, truth):
    # One held-out item per user fits a plain (U, 2) array: no pickle needed.
    (research_dir / "val_full.npy").rename(research_dir / "val.npy")
    (research_dir / "test_full.npy").unlink()
    np.save(research_dir / "test.npy", truth["splits"]["test"] + [0, NUM_USERS])

    dataset = import_research(research_dir, allow_pickle=True)
    assert id_pairs(dataset, "test") == truth_pairs(truth, "test")
    assert id_pairs(dataset, "valid") == truth_pairs(truth, "valid")


def test_research_pickle_can_be_refused(research_dir):
    with pytest.raises(DataError, match="pickled object array.*unpickling was refus"):
        import_research(research_dir, allow_pickle=False)


def test_research_given_user_count_moves_the_offset(research_dir, truth):
    # Two extra users without interactions: every item id shifts by two.
    shifted = truth["splits"]["train"] + [0, NUM_USERS + 2]
    np.save(research_dir / "train.npy", shifted)
    for name in ("val_full.npy", "test_full.npy"):
        rows = np.load(research_dir / name, allow_pickle=True)
        for row in rows:
            row[1:] = [item + 2 for item in row[1:]]
        np.save(research_dir / name, rows, allow_pickle=True)

    dataset = import_research(research_dir, num_users=NUM_USERS + 2)
    assert dataset.num_users == NUM_USERS + 2
    assert id_pairs(dataset, "train") == truth_pairs(truth, "train")


def test_research_user_count_too_small(research_dir):
    with pytest.raises(DataError, match="num_users=3 but user id 5 occurs"):
        import_research(research_dir, num_users=3)


def test_research_item_below_the_offset(research_dir, truth):
    np.save(research_dir / "train.npy", truth["splits"]["train"])  # not offset
    with pytest.raises(DataError, match="is below the user count 6"):
        import_research(research_dir)


def test_research_other_feature_names(research_dir, truth):
    (research_dir / "FeatureAudio.npy").rename(research_dir / "FeatureSketch.npy")
    dataset = import_research(research_dir)
    assert sorted(dataset.modalities) == ["sketch", "visual"]


def test_research_two_files_for_one_modality(research_dir, truth):
    np.save(research_dir / "FeatureVideo_normal.npy", truth["visual"])
    with pytest.raises(DataError, match="both FeatureVideo.npy and FeatureVideo_"):
        import_research(research_dir)


def test_research_missing_files(research_dir):
    (research_dir / "test_full.npy").unlink()
    with pytest.raises(DataError, match="no test file; expected test_full.npy or"):
        import_research(research_dir)
    (research_dir / "train.npy").unlink()
    with pytest.raises(DataError, match="no train.npy"):
        import_research(research_dir)


def test_research_malformed_train_pairs(research_dir):
    np.save(research_dir / "train.npy", np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(DataError, match=r"expected a non-empty \(E, 2\) array"):
        import_research(research_dir)


def test_research_item_beyond_features(research_dir, truth):
    np.save(research_dir / "FeatureVideo.npy", truth["visual"][:5])
    np.save(research_dir / "FeatureAudio.npy", truth["acoustic"][:5])
    with pytest.raises(DataError, match=r"item id \d is out of range \[0, 5\)"):
        import_research(research_dir)


# --------------------------------------------------------------------- CSV
def test_csv_round_trip_follows_the_items_file(csv_source, truth, tmp_path):
    dataset = import_csv(
        csv_source["path"],
        user_col="uid",
        item_col="iid",
        features=csv_source["features"],
        items_file=csv_source["items_file"],
    )

    for split in ("train", "valid", "test"):
        assert id_pairs(dataset, split) == truth_pairs(truth, split, "u{}", "i{}")
    rows = dataset.item_index([f"i{i}" for i in range(NUM_ITEMS)])
    np.testing.assert_array_equal(dataset.features["visual"][rows], truth["visual"])
    assert_round_trip(dataset, tmp_path)


def test_csv_without_items_file_assumes_sorted_ids(tmp_path):
    frame = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [10, 2, 10, 30, 2]})
    frame["split"] = ["train", "valid", "train", "test", "train"]
    frame.to_csv(tmp_path / "x.csv", index=False)
    visual = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "v.npy", visual)

    dataset = import_csv(tmp_path / "x.csv", features={"visual": tmp_path / "v.npy"})
    assert dataset.item_ids.tolist() == ["2", "10", "30"]  # numeric order
    np.testing.assert_array_equal(dataset.features["visual"], visual)


def test_csv_random_split_is_seeded(tmp_path, unsplit_frame):
    unsplit_frame.to_csv(tmp_path / "x.csv", index=False)
    first = import_csv(tmp_path / "x.csv", seed=5)
    again = import_csv(tmp_path / "x.csv", seed=5)
    other = import_csv(tmp_path / "x.csv", seed=6)

    assert id_pairs(first, "test") == id_pairs(again, "test")
    assert id_pairs(first, "test") != id_pairs(other, "test")
    assert first.info().num_interactions == {"train": 240, "valid": 30, "test": 30}


def test_csv_tsv_with_dates_and_leave_last_out(tmp_path, unsplit_frame):
    frame = unsplit_frame.assign(
        timestamp=pd.Timestamp("2024-01-01")
        + pd.to_timedelta(unsplit_frame.timestamp, "s")
    )
    frame.to_csv(tmp_path / "x.tsv", sep="\t", index=False)

    dataset = import_csv(tmp_path / "x.tsv", split_method="leave-last-out")
    latest = frame.sort_values("timestamp").groupby("user").tail(1)
    expected = set(zip(latest.user.astype(str), latest.item.astype(str), strict=True))
    assert id_pairs(dataset, "test") == expected


def test_csv_kcore_drops_items_and_their_feature_rows(tmp_path):
    # Item 9 has one interaction: a 2-core removes it and its feature row.
    users = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    items = [5, 6, 7, 5, 6, 7, 5, 6, 7, 9]
    pd.DataFrame({"user": users, "item": items}).to_csv(tmp_path / "x.csv", index=False)
    (tmp_path / "items.txt").write_text("item\n9\n7\n6\n5\n")
    np.save(tmp_path / "v.npy", np.array([[9.0], [7.0], [6.0], [5.0]]))

    dataset = import_csv(
        tmp_path / "x.csv",
        kcore=2,
        features={"v": tmp_path / "v.npy"},
        items_file=tmp_path / "items.txt",
        ratios=(0.34, 0.33, 0.33),
    )
    assert dataset.item_ids.tolist() == ["7", "6", "5"]
    assert dataset.features["v"].ravel().tolist() == [7.0, 6.0, 5.0]
    assert "3" not in dataset.user_ids


def test_csv_min_rating(tmp_path, unsplit_frame):
    frame = unsplit_frame.assign(rating=np.tile([1, 5], 150))
    frame.to_csv(tmp_path / "x.csv", index=False)
    dataset = import_csv(tmp_path / "x.csv", min_rating=4)
    assert sum(dataset.info().num_interactions.values()) == 150


def test_csv_min_rating_without_rating_column(tmp_path, unsplit_frame):
    unsplit_frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="min_rating needs a rating column"):
        import_csv(tmp_path / "x.csv", min_rating=4)


def test_csv_duplicates_are_warned_and_dropped(tmp_path, unsplit_frame, caplog):
    repeated = pd.concat([unsplit_frame, unsplit_frame.iloc[:7]], ignore_index=True)
    repeated.to_csv(tmp_path / "x.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="mgat.data.importers"):
        dataset = import_csv(tmp_path / "x.csv")
    assert "dropped 7 duplicate interactions" in caplog.text
    assert "kept the earliest" in caplog.text
    assert sum(dataset.info().num_interactions.values()) == 300


def test_csv_missing_columns(csv_source):
    with pytest.raises(DataError, match="missing column.*user, item; found uid, iid"):
        import_csv(csv_source["path"])


def test_csv_wrong_separator_hint(csv_source):
    with pytest.raises(DataError, match="often means the wrong separator"):
        import_csv(csv_source["path"], user_col="uid", item_col="iid", sep=";")


def test_csv_named_column_absent(csv_source):
    with pytest.raises(DataError, match="missing column.*when; found uid, iid"):
        import_csv(
            csv_source["path"], user_col="uid", item_col="iid", timestamp_col="when"
        )


def test_csv_item_without_feature_row(csv_source):
    lines = csv_source["items_file"].read_text().splitlines()
    csv_source["items_file"].write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataError, match="have item ids with no feature row"):
        import_csv(
            csv_source["path"],
            user_col="uid",
            item_col="iid",
            items_file=csv_source["items_file"],
        )


def test_csv_feature_row_count_mismatch(csv_source, truth):
    np.save(csv_source["features"]["visual"], truth["visual"][:-1])
    with pytest.raises(DataError, match="'visual': 7 rows but 8 items"):
        import_csv(
            csv_source["path"],
            user_col="uid",
            item_col="iid",
            features=csv_source["features"],
            items_file=csv_source["items_file"],
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_csv_non_finite_features(csv_source, truth, bad):
    visual = truth["visual"].copy()
    visual[2, 0] = bad
    np.save(csv_source["features"]["visual"], visual)
    with pytest.raises(DataError, match="NaN or infinite values.*Impute or drop"):
        import_csv(
            csv_source["path"],
            user_col="uid",
            item_col="iid",
            features=csv_source["features"],
            items_file=csv_source["items_file"],
        )


def test_csv_missing_feature_file(csv_source, tmp_path):
    with pytest.raises(DataError, match="text: file .*nope.npy does not exist"):
        import_csv(
            csv_source["path"],
            user_col="uid",
            item_col="iid",
            features={"text": tmp_path / "nope.npy"},
        )


def test_csv_feature_file_not_an_array(csv_source):
    with pytest.raises(DataError, match="cannot read it as a plain .npy array"):
        import_csv(
            csv_source["path"],
            user_col="uid",
            item_col="iid",
            features={"visual": csv_source["items_file"]},
        )


def test_csv_overlapping_splits(tmp_path):
    frame = pd.DataFrame(
        {
            "user": [1, 1, 2, 1],
            "item": [1, 2, 1, 1],
            "split": ["train", "valid", "test", "test"],
        }
    )
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="train and test splits share 1 .*one split"):
        import_csv(tmp_path / "x.csv")


def test_csv_empty_split(tmp_path):
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 2], "split": "train"})
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="the valid split is empty"):
        import_csv(tmp_path / "x.csv")


def test_csv_split_column_wins_over_a_split_method(csv_source, caplog):
    with caplog.at_level(logging.WARNING, logger="mgat.data.importers"):
        dataset = import_csv(
            csv_source["path"], user_col="uid", item_col="iid", split_method="random"
        )
    assert "has a split column, so the random split was not applied" in caplog.text
    assert dataset.meta["split"] == "from the file"


def test_csv_unknown_split_label(tmp_path):
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 2], "split": ["train", "dev"]})
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="line 3 has split 'dev'; expected one of"):
        import_csv(tmp_path / "x.csv")


def test_csv_empty_id(tmp_path):
    (tmp_path / "x.csv").write_text("user,item\n1,2\n,3\n")
    with pytest.raises(DataError, match="line 3 has an empty user or item id"):
        import_csv(tmp_path / "x.csv")


def test_csv_empty_or_missing_file(tmp_path):
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        import_csv(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("user,item\n")
    with pytest.raises(DataError, match="no interactions below the header"):
        import_csv(tmp_path / "y.csv")
    with pytest.raises(DataError, match="does not exist"):
        import_csv(tmp_path / "z.csv")


def test_csv_temporal_split_needs_timestamps(tmp_path, unsplit_frame):
    unsplit_frame.drop(columns="timestamp").to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="missing column.*timestamp.*random split"):
        import_csv(tmp_path / "x.csv", split_method="temporal")


def test_csv_unreadable_timestamps(tmp_path, unsplit_frame):
    unsplit_frame.assign(timestamp="soon").to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="neither numbers nor dates"):
        import_csv(tmp_path / "x.csv")


def test_csv_unknown_split_method(tmp_path, unsplit_frame):
    unsplit_frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ConfigError, match="unknown split method 'daily'; expected"):
        import_csv(tmp_path / "x.csv", split_method="daily")


# ---------------------------------------------------------------- dispatch
def test_import_dataset_dispatches(mmrec_dir, truth):
    dataset = import_dataset("mmrec", mmrec_dir)
    assert id_pairs(dataset, "test") == truth_pairs(truth, "test")


def test_import_dataset_unknown_format(mmrec_dir):
    with pytest.raises(
        DataError, match="'parquet'; expected one of mmrec, research, c"
    ):
        import_dataset("parquet", mmrec_dir)


def test_import_dataset_foreign_option(mmrec_dir):
    with pytest.raises(ConfigError, match="kcore do not apply to the mmrec format"):
        import_dataset("mmrec", mmrec_dir, kcore=5)


# --------------------------------------------------------------- real data
def test_tiktok_survives_an_mmrec_round_trip(tmp_path):
    tiktok = Dataset.load("tiktok")
    root = tmp_path / "tiktok"
    root.mkdir()
    labels = pd.concat(
        pd.DataFrame({"userID": p[:, 0], "itemID": p[:, 1], "x_label": label})
        for label, p in enumerate(tiktok.splits.values())
    )
    labels.to_csv(root / "tiktok.inter", sep="\t", index=False)
    np.save(root / "image_feat.npy", tiktok.features["visual"])
    np.save(root / "audio_feat.npy", tiktok.features["acoustic"])

    imported = import_mmrec(root)
    assert imported.info() == tiktok.info()
    for split in ("train", "valid", "test"):
        assert id_pairs(imported, split) == id_pairs(tiktok, split)
