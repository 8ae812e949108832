"""Explanations: shares that add up to the score, evidence from the user's past."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgat.errors import ConfigError
from mgat.models import MODELS, ModelData, create_model
from mgat.recommend import Scorer, explain, explain_new_user

SMALL = {
    "mgat": {"embed_dim": 8, "latent_dim": 6, "latent_dims": {}, "num_layers": 2},
    "mmgcn": {"embed_dim": 8, "latent_dim": 6},
    "lightgcn": {"embed_dim": 8},
    "vbpr": {"embed_dim": 8, "content_dim": 4},
    "bprmf": {"embed_dim": 8},
}


def test_shares_sum_to_the_score(scorer):
    for user in (0, 7, 12):
        items, scores = scorer.recommend([user], k=10)
        explanations = explain(scorer, user, items[0])

        for why, score in zip(explanations, scores[0], strict=True):
            assert set(why.shares) == {"visual", "acoustic"}
            assert sum(why.shares.values()) == pytest.approx(why.score, rel=1e-12)
            assert why.score == pytest.approx(float(score), rel=1e-5)


def test_shares_split_each_side_evenly(scorer):
    """share_m = 1/2 (<u_m, i> + <u, i_m>), recomputed by hand."""
    (user_v, item_v) = scorer.attribution.parts["visual"]
    user, item = 4, 9
    u, i = scorer.user_rep[user].double(), scorer.item_rep[item].double()
    expected = 0.5 * (user_v[user].double() @ i + u @ item_v[item].double())
    assert explain(scorer, user, [item])[0].shares["visual"] == pytest.approx(
        float(expected)
    )


def test_evidence_is_the_users_most_attended_training_items(scorer, clusters):
    user = 5
    owned = set(clusters.train_items(user))
    why = explain(scorer, user, [0, 1], top=4)

    assert why[0].evidence == why[1].evidence  # about the user, not the item
    for name in ("visual", "acoustic"):
        evidence = why[0].evidence[name]
        weights = [e.weight for e in evidence]
        assert len(evidence) == 4
        assert {e.item for e in evidence} <= owned
        assert weights == sorted(weights, reverse=True)
        assert all(
            0.0 < w <= 1.0 and 0.0 < e.gate < 1.0
            for w, e in zip(weights, evidence, strict=True)
        )

    everything = explain(scorer, user, [0], top=100)[0].evidence["visual"]
    assert {e.item for e in everything} == owned
    # Gate inside the softmax: the weights over a user's items sum to one.
    assert sum(e.weight for e in everything) == pytest.approx(1.0, rel=1e-5)


def test_id_only_model_has_one_share_and_no_evidence(saved_bprmf):
    scorer = Scorer.from_saved(saved_bprmf)
    items, scores = scorer.recommend([2], k=3)
    for why, score in zip(explain(scorer, 2, items[0]), scores[0], strict=True):
        assert why.shares == {"id": pytest.approx(why.score)}
        assert why.score == pytest.approx(float(score), rel=1e-5)
        assert why.evidence == {}


def test_new_user_shares_sum_to_its_score(scorer, clusters):
    chosen = clusters.train_items(0)
    items, scores = scorer.recommend_new_users([chosen], k=5)
    for why, score in zip(
        explain_new_user(scorer, chosen, items[0]), scores[0], strict=True
    ):
        assert sum(why.shares.values()) == pytest.approx(float(score), rel=1e-5)
        assert why.evidence == {}


def test_summary_and_dict_use_original_ids(scorer, clusters):
    why = explain(scorer, 1, [25])[0]
    text = why.summary(scorer.item_ids)
    assert text.startswith("visual ") and "acoustic" in text and "attended" in text
    record = why.to_dict(scorer.item_ids)
    assert record["item"] == "i25"
    assert all(e["item"].startswith("i") for e in record["evidence"]["visual"])


def test_bad_arguments_are_refused(scorer):
    with pytest.raises(ConfigError, match="evidence"):
        explain(scorer, 0, [1], top=-1)
    with pytest.raises(ConfigError, match="item indices"):
        explain(scorer, 0, [40])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_attribution_sums_to_its_representations(name):
    rng = np.random.default_rng(0)
    pairs = np.array([(u, i) for u in range(6) for i in rng.choice(8, 3, False)])
    features = {"visual": rng.normal(size=(8, 5)).astype(np.float32)}
    torch.manual_seed(0)
    model = create_model(name, ModelData(6, 8, pairs, features), SMALL.get(name))

    attribution = model.attribution()
    users, items = model.embed()
    parts = attribution.parts.values()
    torch.testing.assert_close(sum(u for u, _ in parts), users)
    torch.testing.assert_close(sum(i for _, i in parts), items)
    for weights in attribution.edge_weight.values():
        assert weights.shape == (model.graph.num_edges,)
