"""Cold start: new items from their features, new users from their items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgat.errors import ConfigError, DataError
from mgat.evaluation import cold_item_targets
from mgat.recommend import Scorer
from mgat.train import evaluate_model


def test_new_item_of_the_liked_cluster_ranks_above_the_other(scorer, clusters):
    features = clusters.new_item_features([0, 1])
    scores = scorer.score_new_items(np.arange(scorer.num_users), features)

    likes_first = clusters.user_cluster == 0
    np.testing.assert_array_equal(scores[:, 0] > scores[:, 1], likes_first)


def test_new_items_enter_the_rankings_under_their_ids(scorer, clusters):
    features = clusters.new_item_features([0, 0, 1, 1])
    wider = scorer.with_new_items(["n0a", "n0b", "n1a", "n1b"], features)
    assert wider.num_items == scorer.num_items + 4
    assert list(wider.item_index(["n1a", "i3"])) == [42, 3]

    items, _ = wider.recommend(np.arange(wider.num_users), k=wider.num_items)
    position = {item: np.argwhere(items == item)[:, 1] for item in (40, 42)}
    # Each cluster's users rank their cluster's new item above the other's.
    likes_first = clusters.user_cluster == 0
    np.testing.assert_array_equal(position[40] < position[42], likes_first)
    # Adding items does not change the known items' scores.
    np.testing.assert_allclose(
        wider.score([0, 1], [5, 25]), scorer.score([0, 1], [5, 25])
    )


def test_new_item_ids_and_features_are_checked(scorer, clusters):
    features = clusters.new_item_features([0])
    with pytest.raises(DataError, match="already items of the model"):
        scorer.with_new_items(["i1"], features)
    with pytest.raises(DataError, match="duplicate ids"):
        scorer.with_new_items(["a", "a"], clusters.new_item_features([0, 1]))
    with pytest.raises(DataError, match="2 ids but features for 1 items"):
        scorer.with_new_items(["a", "b"], features)
    with pytest.raises(DataError, match=r"expected the modalities \['acoustic'"):
        scorer.with_new_items(["a"], {"visual": features["visual"]})
    with pytest.raises(DataError, match=r"expected a non-empty \(I', 8\) array"):
        scorer.with_new_items(["a"], {**features, "visual": np.zeros((1, 3))})
    with pytest.raises(DataError, match="NaN"):
        scorer.with_new_items(["a"], {**features, "visual": np.full((1, 8), np.nan)})
    with pytest.raises(DataError, match="row counts"):
        scorer.with_new_items(
            ["a"], {**features, "visual": clusters.new_item_features([0, 1])["visual"]}
        )


def test_new_user_gets_the_cluster_of_its_items(scorer, clusters):
    chosen = [clusters.train_items(0)[:4], clusters.train_items(1)[:4]]
    items, scores = scorer.recommend_new_users(chosen, k=8)

    np.testing.assert_array_equal(clusters.item_cluster[items], [[0] * 8, [1] * 8])
    for given, top in zip(chosen, items, strict=True):
        assert not np.isin(given, top).any()
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_a_single_item_is_enough_to_fold_in(scorer, clusters):
    items, _ = scorer.recommend_new_users([[25]], k=5)
    assert (clusters.item_cluster[items[0]] == 1).all()
    kept, _ = scorer.recommend_new_users([[25]], k=40, exclude_given=False)
    assert 25 in kept[0]


def test_fold_in_refuses_empty_or_unknown_items(scorer, saved):
    with pytest.raises(ConfigError, match="has no items"):
        saved.model.fold_in_users([[1], []])
    with pytest.raises(ConfigError, match="at least one new user"):
        saved.model.fold_in_users([])
    with pytest.raises(ConfigError, match=r"item indices in \[0, 40\)"):
        scorer.recommend_new_users([[40]], k=3)


def test_id_only_model_cannot_score_new_items(saved_bprmf, clusters):
    model = saved_bprmf.model
    with pytest.raises(ConfigError, match="cannot score items it was not trained on"):
        model.new_item_representations(clusters.new_item_features([0]))
    with pytest.raises(ConfigError, match="content model such as mgat"):
        Scorer.from_saved(saved_bprmf).with_new_items(
            ["a"], clusters.new_item_features([0])
        )


def test_id_only_model_folds_in_the_mean_of_the_items(saved_bprmf, clusters):
    model = saved_bprmf.model
    _, item_rep = model.embed()
    folded = model.fold_in_users([[1, 2, 3], [30]])
    torch.testing.assert_close(folded[0], item_rep[[1, 2, 3]].mean(0))
    torch.testing.assert_close(folded[1], item_rep[30])

    items, _ = Scorer.from_saved(saved_bprmf).recommend_new_users([[30, 31]], k=5)
    assert (clusters.item_cluster[items[0]] == 1).all()


def test_evaluation_can_rank_a_subset_of_items(saved, clusters):
    dataset = clusters.dataset
    few = np.unique(dataset.splits["test"][:, 1])[:3]
    targets = cold_item_targets(dataset.matrix("test"), few)
    everything = evaluate_model(saved.model, dataset, "test", (3,), targets=targets)
    only_few = evaluate_model(
        saved.model, dataset, "test", (3,), targets=targets, items=few
    )
    # Three candidates and K = 3: every target is inside the list.
    assert only_few["recall@3"] == pytest.approx(1.0)
    assert everything["recall@3"] < 1.0
