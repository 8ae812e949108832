"""The Recommender contract, checked for every registered model.

Each model runs with small widths on the tiny random graph, in its default
form and in the variants that change which code runs (aggregation, gate...).
A model registered later is covered with its default config.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgat.errors import ConfigError
from mgat.models import MODELS, ModelData, create_model
from mgat.saved import load_model, save_model

SMALL = {
    "mgat": {"embed_dim": 8, "latent_dim": 6, "latent_dims": {}, "num_layers": 2},
    "mmgcn": {"embed_dim": 8, "latent_dim": 6, "num_layers": 2},
    "lightgcn": {"embed_dim": 8, "num_layers": 2},
    "vbpr": {"embed_dim": 8, "content_dim": 4},
    "bprmf": {"embed_dim": 8},
}
VARIANTS = [
    ("mgat", {"gate": "concat", "gate_placement": "multiply"}),
    ("mgat", {"gate": "bi", "layer_combine": "sum", "modality_fusion": "weighted"}),
    ("mgat", {"id_layers": 2, "similar_items": 2, "content_bias": True}),
    ("mmgcn", {"aggregation": "max", "combination": "element"}),
    ("mmgcn", {"num_layers": 1, "modality_fusion": "mean"}),
    ("lightgcn", {"num_layers": 0}),
    ("vbpr", {"feature_scaling": "standardize", "item_bias": False}),
]
CASES = [(name, {}) for name in sorted(MODELS)] + VARIANTS


def build(name: str, options: dict, data: ModelData, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(name, data, {**SMALL.get(name, {}), **options})


def full_batch(data: ModelData):
    """Every training pair once, with negatives that cover every item."""
    pairs = torch.as_tensor(data.train)
    neg = torch.arange(len(pairs)) % data.num_items
    return pairs[:, 0], pairs[:, 1], neg


@pytest.fixture(params=CASES, ids=lambda case: f"{case[0]}-{len(case[1])}")
def case(request):
    return request.param


def test_representations_have_one_row_per_node(case, tiny_data):
    model = build(*case, tiny_data)
    users, items = model.representations()

    assert users.shape[0] == tiny_data.num_users
    assert items.shape[0] == tiny_data.num_items
    assert users.shape[1] == items.shape[1] >= 1
    assert torch.isfinite(users).all() and torch.isfinite(items).all()


def test_loss_is_a_finite_scalar_whose_gradient_reaches_every_parameter(
    case, tiny_data
):
    model = build(*case, tiny_data)
    parts = model.loss(*full_batch(tiny_data), reg_weight=1e-2)
    parts.total.backward()

    assert parts.total.shape == () and torch.isfinite(parts.total)
    assert torch.allclose(parts.total, parts.ranking + parts.regularization)
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} is not in the graph"
        assert parameter.grad.abs().sum() > 0, f"{name} has a zero gradient"


def test_the_l2_term_is_the_sum_of_squares_of_the_batch_rows(case, tiny_data):
    model = build(*case, tiny_data)
    users, pos, neg = full_batch(tiny_data)
    parts = model.loss(users, pos, neg, reg_weight=0.1)

    terms = model.regularized(users, pos, neg)
    squares = sum(table[rows].pow(2).sum() for table, rows in terms)
    torch.testing.assert_close(parts.regularization, 0.1 * 0.5 * squares / len(users))


def test_the_ranking_loss_scores_pairs_by_inner_product(case, tiny_data):
    model = build(*case, tiny_data)
    users, pos, neg = full_batch(tiny_data)
    user_rep, item_rep = model.representations()

    def scores(items: torch.Tensor) -> torch.Tensor:
        pairs = zip(users.tolist(), items.tolist(), strict=True)
        return torch.stack([torch.dot(user_rep[u], item_rep[i]) for u, i in pairs])

    expected = -F.logsigmoid(scores(pos) - scores(neg)).mean()
    torch.testing.assert_close(model.loss(users, pos, neg).ranking, expected)


def test_training_on_cpu_is_deterministic_under_a_seed(case, tiny_data):
    def one_step(seed: int) -> torch.Tensor:
        model = build(*case, tiny_data, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.loss(*full_batch(tiny_data), reg_weight=1e-3).total.backward()
        optimizer.step()
        return torch.cat([r.flatten() for r in model.embed()])

    torch.testing.assert_close(one_step(0), one_step(0), rtol=0, atol=0)
    assert not torch.equal(one_step(0), one_step(1))


def test_state_dict_round_trip_restores_the_representations(case, tiny_data):
    source = build(*case, tiny_data, seed=0)
    target = build(*case, tiny_data, seed=1)
    target.load_state_dict(source.state_dict())

    for got, want in zip(target.embed(), source.embed(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_saved_model_round_trip_restores_the_representations(case, tiny_data, tmp_path):
    model = build(*case, tiny_data)
    user_ids = np.array([f"u{i}" for i in range(tiny_data.num_users)])
    item_ids = np.array([f"i{i}" for i in range(tiny_data.num_items)])
    save_model(tmp_path / "model", model, tiny_data, user_ids, item_ids)
    loaded = load_model(tmp_path / "model").model

    for got, want in zip(loaded.embed(), model.embed(), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_dataset_without_modalities_trains_or_is_refused_clearly(name, tiny_data):
    id_only = ModelData(tiny_data.num_users, tiny_data.num_items, tiny_data.train, {})
    try:
        model = build(name, {}, id_only)
    except ConfigError as err:
        assert "modality" in str(err) and "lightgcn" in str(err)
        return
    users, items = model.representations()
    assert torch.isfinite(users).all() and torch.isfinite(items).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unknown_options_are_rejected_with_the_valid_ones(name, tiny_data):
    with pytest.raises(ConfigError, match="valid options"):
        create_model(name, tiny_data, {"no_such_option": 1})
