"""MovieLens-100K built from the installed recbole wheel."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from mgat.data import Dataset
from mgat.data.movielens import (
    build_movielens_100k,
    positive_interactions,
    read_atomic,
    read_kg_links,
    source_dir,
    write_movielens_100k,
)
from mgat.errors import DataError

# ML-100K item id -> MovieLens id, checked by hand against the knowledge graph
# (Star Wars' sequel is The Empire Strikes Back, whose sequel is Return of the
# Jedi; Aladdin and Beauty and the Beast are animated).
KNOWN_LINKS = {"1": "1", "50": "260", "172": "1196", "181": "1210", "95": "588"}
KNOWN_LINKS["588"] = "595"
STAR_WARS, EMPIRE, JEDI, ALADDIN, BEAUTY = 49, 171, 180, 94, 587  # item rows


def _links_file(path):
    rows = [f"{item},{movielens}" for item, movielens in KNOWN_LINKS.items()]
    path.write_text("item_id,movielens_id\n" + "\n".join(rows) + "\n")
    return path


def _fake_encoder(texts, *args, **kwargs):
    return np.zeros((len(texts), 384), dtype=np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The dataset with all three modalities, saved and loaded back."""
    root = tmp_path_factory.mktemp("movielens")
    dataset = build_movielens_100k(seed=0, kg_links=_links_file(root / "links.csv"))
    write_movielens_100k(dataset, root / "ml")
    return {"dir": root / "ml", "dataset": Dataset.load(root / "ml")}


def _cosine(array, a, b):
    return array[a] @ array[b] / np.linalg.norm(array[a]) / np.linalg.norm(array[b])


def test_counts_and_modalities(built):
    dataset = built["dataset"]
    assert 900 < dataset.num_users <= 943
    assert dataset.num_items == 1682
    assert dataset.item_ids[[0, STAR_WARS]].tolist() == ["1", "50"]
    widths = {name: array.shape for name, array in dataset.features.items()}
    assert widths == {
        "text": (1682, 384),
        "genre_year": (1682, 32),
        "knowledge": (1682, 64),
    }


def test_splits_are_disjoint_and_near_8_1_1(built):
    dataset = built["dataset"]
    keys = {
        split: set(map(tuple, pairs.tolist()))
        for split, pairs in dataset.splits.items()
    }
    assert not keys["train"] & keys["valid"]
    assert not keys["train"] & keys["test"]
    assert not keys["valid"] & keys["test"]
    total = sum(map(len, keys.values()))
    assert 0.78 < len(keys["train"]) / total < 0.82
    assert dataset.info().users_without_train == 0


def test_only_ratings_of_four_or_five_are_positives(built):
    dataset = built["dataset"]
    ratings = read_atomic(source_dir() / "ml-100k.inter")
    rating = ratings.set_index(["user_id", "item_id"])["rating"].astype(float)
    pairs = np.concatenate(list(dataset.splits.values()))
    index = pd.MultiIndex.from_arrays(
        [dataset.user_ids[pairs[:, 0]], dataset.item_ids[pairs[:, 1]]]
    )
    assert rating.reindex(index).min() >= 4
    assert len(pairs) == int((ratings["rating"].astype(float) >= 4).sum())


def test_the_split_follows_the_seed():
    ratings = read_atomic(source_dir() / "ml-100k.inter")
    first, again = positive_interactions(ratings, 0), positive_interactions(ratings, 0)
    other = positive_interactions(ratings, 1)
    assert first["split"].tolist() == again["split"].tolist()
    assert first["split"].tolist() != other["split"].tolist()


def test_genre_year_rows(built):
    dataset = built["dataset"]
    genre_year = dataset.features["genre_year"]
    columns = np.array(dataset.meta["genre_year_columns"])
    assert len(columns) == genre_year.shape[1]
    is_year = np.char.startswith(columns, "year ")
    assert np.all(genre_year[:, is_year].sum(axis=1) == 1)  # one year bin each

    toy_story = columns[genre_year[0] == 1].tolist()
    assert toy_story == ["Animation", "Children's", "Comedy", "year 1995"]
    unknown_movie = dataset.item_index("267")[0]
    assert columns[genre_year[unknown_movie] == 1].tolist() == [
        "unknown",
        "year unknown",
    ]


def test_text_and_knowledge_put_sequels_together(built):
    features = built["dataset"].features
    text, knowledge = features["text"], features["knowledge"]
    assert _cosine(text, STAR_WARS, EMPIRE) > _cosine(text, STAR_WARS, BEAUTY)

    linked = [0, STAR_WARS, EMPIRE, JEDI, ALADDIN, BEAUTY]
    assert np.all(np.abs(knowledge[linked]).sum(axis=1) > 0)
    assert np.abs(np.delete(knowledge, linked, axis=0)).sum() == 0
    assert _cosine(knowledge, STAR_WARS, EMPIRE) > 0.5
    assert _cosine(knowledge, EMPIRE, JEDI) > _cosine(knowledge, EMPIRE, ALADDIN)
    assert _cosine(knowledge, ALADDIN, BEAUTY) > _cosine(knowledge, ALADDIN, JEDI)


def test_provenance_and_meta(built):
    note = (built["dir"] / "PROVENANCE.md").read_text()
    assert "no redistribution" in note and "recbole" in note
    assert "Knowledge-graph links:" in note
    meta = json.loads((built["dir"] / "dataset.json").read_text())["meta"]
    assert meta["split"] == {"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 0}
    assert not list(built["dir"].glob("ml-100k.*"))


def test_without_links_the_knowledge_modality_is_left_out(monkeypatch, caplog):
    monkeypatch.setattr("mgat.features.text.encode_texts", _fake_encoder)
    with caplog.at_level(logging.WARNING, logger="mgat.data.movielens"):
        dataset = build_movielens_100k(seed=0)
    assert dataset.modalities == ["text", "genre_year"]
    assert "shipped ml-100k.link uses MovieLens ids" in caplog.text


def test_link_tables_are_checked(tmp_path):
    item_ids = np.arange(1, 1683).astype(str)
    shipped = read_atomic(source_dir() / "ml-100k.link")
    (tmp_path / "a.csv").write_text("item,entity\n1,m.0dyb1\n")
    with pytest.raises(DataError, match="expected columns item_id and movielens_id"):
        read_kg_links(tmp_path / "a.csv", item_ids, shipped)
    (tmp_path / "b.csv").write_text("item_id,entity_id\n5000,m.0dyb1\n")
    with pytest.raises(DataError, match="not ML-100K item ids"):
        read_kg_links(tmp_path / "b.csv", item_ids, shipped)
    (tmp_path / "c.csv").write_text("item_id,entity_id\n1,m.0dyb1\n")
    links = read_kg_links(tmp_path / "c.csv", item_ids, shipped)
    assert links.values.tolist() == [["1", "m.0dyb1"]]
