"""Top-K recommendation: exactness against full ranking, masking, streaming."""

from __future__ import annotations

import numpy as np
import pytest

from mgat.errors import CheckpointError, ConfigError, DataError
from mgat.recommend import (
    NO_ITEM,
    iter_recommend,
    load_new_items,
    load_saved,
    recommend,
)


def full_scores(saved) -> np.ndarray:
    """(U, I) scores with training items at -inf, computed the plain way."""
    users, items = saved.model.embed()
    scores = (users @ items.T).numpy()
    scores[saved.train[:, 0], saved.train[:, 1]] = -np.inf
    return scores


def test_top_k_is_the_best_of_the_full_ranking(saved, scorer):
    users = np.arange(scorer.num_users)
    items, scores = recommend(scorer, users, k=5)
    expected = full_scores(saved)

    assert items.shape == scores.shape == (len(users), 5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_allclose(scores, np.take_along_axis(expected, items, 1))
    fifth_best = -np.sort(-expected, axis=1)[:, 4]
    np.testing.assert_allclose(scores[:, 4], fifth_best, rtol=1e-6)


def test_training_items_are_left_out_unless_asked(saved, scorer, clusters):
    user = 3
    owned = set(clusters.train_items(user))
    items, _ = scorer.recommend([user], k=scorer.num_items)
    kept = set(items[0][items[0] != NO_ITEM])
    assert not kept & owned
    assert len(kept) == scorer.num_items - len(owned)

    items, scores = scorer.recommend([user], k=scorer.num_items, exclude_train=False)
    assert set(items[0]) == set(range(scorer.num_items))
    assert np.isfinite(scores).all()


def test_unfilled_ranks_hold_no_item(scorer, clusters):
    items, scores = scorer.recommend([0], k=scorer.num_items)
    unfilled = len(clusters.train_items(0))
    assert np.all(items[0, -unfilled:] == NO_ITEM)
    assert np.all(np.isneginf(scores[0, -unfilled:]))


def test_exclude_items_for_every_user(scorer):
    first, _ = scorer.recommend([0, 1], k=3)
    banned = np.unique(first[:, 0])
    second, _ = scorer.recommend([0, 1], k=3, exclude_items=banned)
    assert not np.isin(second, banned).any()


def test_all_users_stream_in_chunks(saved, scorer):
    batches = list(iter_recommend(scorer, k=4, batch_size=7))
    assert [len(b.users) for b in batches] == [7, 7, 7, 7, 2]
    streamed = np.concatenate([b.items for b in batches])
    items, _ = recommend(saved, np.arange(scorer.num_users), k=4)
    np.testing.assert_array_equal(streamed, items)


def test_pair_scores_match_the_representations(saved, scorer):
    users, items = saved.model.embed()
    pairs = np.array([[0, 1], [5, 30], [29, 39]])
    expected = (users[pairs[:, 0]] * items[pairs[:, 1]]).sum(-1).numpy()
    np.testing.assert_allclose(scorer.score(pairs[:, 0], pairs[:, 1]), expected)


def test_id_only_model_recommends_the_same_way(saved_bprmf, clusters):
    items, _ = recommend(saved_bprmf, np.arange(4), k=3)
    assert items.shape == (4, 3)
    own = clusters.item_cluster[items] == clusters.user_cluster[:4, None]
    assert own.all()


@pytest.mark.parametrize("k", [0, -1, 41, 2.5])
def test_k_out_of_range_is_refused(scorer, k):
    with pytest.raises(ConfigError, match=r"k: expected an integer in \[1, 40\]"):
        scorer.recommend([0], k=k)


def test_bad_user_indices_are_refused(scorer):
    with pytest.raises(ConfigError, match="user indices in"):
        scorer.recommend([30], k=3)
    with pytest.raises(ConfigError, match="batch_size"):
        next(scorer.iter_recommend(k=3, batch_size=0))


def test_load_saved_takes_a_run_or_a_model_directory(mgat_run, tmp_path):
    assert load_saved(mgat_run).model.name == "mgat"
    assert load_saved(mgat_run / "model").model.name == "mgat"
    with pytest.raises(CheckpointError, match="no model.json"):
        load_saved(tmp_path)


def test_new_items_directory_is_checked(tmp_path):
    with pytest.raises(DataError, match="no items.txt"):
        load_new_items(tmp_path, ["visual"])
    (tmp_path / "items.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="no visual.npy"):
        load_new_items(tmp_path, ["visual"])
    np.save(tmp_path / "visual.npy", np.zeros((3, 4)))
    with pytest.raises(DataError, match=r"expected \(2, F\) features"):
        load_new_items(tmp_path, ["visual"])
    np.save(tmp_path / "visual.npy", np.zeros((2, 4)))
    ids, features = load_new_items(tmp_path, ["visual"])
    assert list(ids) == ["a", "b"] and features["visual"].dtype == np.float32
