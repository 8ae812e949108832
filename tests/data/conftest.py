"""Small synthetic sources in every import layout, generated per test.

Every layout encodes the same ground truth: 6 users, 8 items, disjoint
train/valid/test pairs and two feature arrays, so an importer's output can
be compared with it directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

NUM_USERS, NUM_ITEMS = 6, 8


@pytest.fixture
def truth() -> dict:
    """Index pairs per split and (I, D) features; every user has all splits."""
    rng = np.random.default_rng(7)
    splits = {"train": [], "valid": [], "test": []}
    for user in range(NUM_USERS):
        items = rng.permutation(NUM_ITEMS)[:5]
        splits["train"] += [(user, int(i)) for i in items[:3]]
        splits["valid"].append((user, int(items[3])))
        splits["test"].append((user, int(items[4])))
    return {
        "num_users": NUM_USERS,
        "num_items": NUM_ITEMS,
        "splits": {s: np.array(p, dtype=np.int64) for s, p in splits.items()},
        "visual": rng.normal(size=(NUM_ITEMS, 4)).astype(np.float32),
        "acoustic": rng.normal(size=(NUM_ITEMS, 3)).astype(np.float32),
    }


@pytest.fixture
def mmrec_dir(tmp_path: Path, truth: dict) -> Path:
    """An MMRec directory: toy.inter plus image_feat.npy and audio_feat.npy."""
    root = tmp_path / "mmrec"
    root.mkdir()
    frames = [
        pd.DataFrame(
            {
                "userID": pairs[:, 0],
                "itemID": pairs[:, 1],
                "rating": 5,
                "timestamp": np.arange(len(pairs)),
                "x_label": label,
            }
        )
        for label, pairs in enumerate(truth["splits"].values())
    ]
    pd.concat(frames).to_csv(root / "toy.inter", sep="\t", index=False)
    np.save(root / "image_feat.npy", truth["visual"])
    np.save(root / "audio_feat.npy", truth["acoustic"])
    return root


@pytest.fixture
def research_dir(tmp_path: Path, truth: dict) -> Path:
    """A research-code directory: items offset by the user count, ragged rows."""
    root = tmp_path / "research"
    root.mkdir()
    offset = np.array([0, NUM_USERS])
    np.save(root / "train.npy", truth["splits"]["train"] + offset)
    for split, filename in (("valid", "val_full.npy"), ("test", "test_full.npy")):
        np.save(
            root / filename, held_out_rows(truth["splits"][split]), allow_pickle=True
        )
    np.save(root / "FeatureVideo.npy", truth["visual"])
    np.save(root / "FeatureAudio.npy", truth["acoustic"])
    return root


def held_out_rows(pairs: np.ndarray) -> np.ndarray:
    """Object array of ``[user, item + U, ...]`` lists, one per user."""
    rows = np.empty(NUM_USERS, dtype=object)
    for user in range(NUM_USERS):
        items = pairs[pairs[:, 0] == user, 1] + NUM_USERS
        rows[user] = [user, *items.tolist()]
    return rows


@pytest.fixture
def csv_source(tmp_path: Path, truth: dict) -> dict:
    """A CSV with string ids and a split column, features and an items file.

    Item ids are ``i<index>`` and the items file lists them in reverse, so the
    feature rows are reversed too: the importer must follow the items file.
    """
    root = tmp_path / "csv"
    root.mkdir()
    frames = [
        pd.DataFrame(
            {
                "uid": [f"u{u}" for u in pairs[:, 0]],
                "iid": [f"i{i}" for i in pairs[:, 1]],
                "split": split,
            }
        )
        for split, pairs in truth["splits"].items()
    ]
    pd.concat(frames).to_csv(root / "interactions.csv", index=False)

    order = np.arange(NUM_ITEMS)[::-1]
    (root / "items.txt").write_text("".join(f"i{i}\n" for i in order))
    np.save(root / "visual.npy", truth["visual"][order])
    np.save(root / "acoustic.npy", truth["acoustic"][order])
    return {
        "path": root / "interactions.csv",
        "items_file": root / "items.txt",
        "features": {"visual": root / "visual.npy", "acoustic": root / "acoustic.npy"},
    }


@pytest.fixture
def unsplit_frame() -> pd.DataFrame:
    """300 unique interactions of 30 users with distinct integer timestamps."""
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(30), 10)
    items = np.concatenate([rng.permutation(50)[:10] for _ in range(30)])
    time = rng.permutation(len(users)) * 10
    return pd.DataFrame({"user": users, "item": items, "timestamp": time})
