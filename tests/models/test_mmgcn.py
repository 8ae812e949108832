"""MMGCN: aggregation, combination, fusion, trainable embeddings, planted test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mgat.errors import ConfigError
from mgat.models import ModelData, create_model
from mgat.models.mmgcn import GraphConvLayer, MMGCNConfig, aggregate

SMALL = {"embed_dim": 6, "latent_dim": 5}


def neighbour_lists(graph) -> list[list[int]]:
    rowptr, col = graph.rowptr.tolist(), graph.col.tolist()
    return [col[rowptr[h] : rowptr[h + 1]] for h in range(graph.num_nodes)]


@pytest.mark.parametrize("how", ["mean", "max", "symmetric"])
def test_aggregation_matches_a_loop_over_neighbours(tiny_data, how):
    graph = tiny_data.graph()
    messages = torch.randn(graph.num_nodes, 3)
    got = aggregate(graph, messages, how)

    lists = neighbour_lists(graph)
    for node, neighbours in enumerate(lists):
        if not neighbours:  # the cold item
            assert torch.equal(got[node], torch.zeros(3))
        elif how == "mean":
            torch.testing.assert_close(got[node], messages[neighbours].mean(0))
        elif how == "max":
            torch.testing.assert_close(got[node], messages[neighbours].amax(0))
        else:
            weights = torch.tensor(
                [(len(neighbours) * len(lists[t])) ** -0.5 for t in neighbours]
            )
            expected = (weights[:, None] * messages[neighbours]).sum(0)
            torch.testing.assert_close(got[node], expected)


@pytest.mark.parametrize("how", ["mean", "max", "symmetric"])
def test_aggregation_passes_gradients_to_the_messages(tiny_data, how):
    graph = tiny_data.graph()
    messages = torch.randn(graph.num_nodes, 3, requires_grad=True)
    aggregate(graph, messages, how).sum().backward()

    assert messages.grad is not None and messages.grad.abs().sum() > 0


@pytest.mark.parametrize("combination", ["concat", "element"])
def test_a_layer_follows_the_combination_equation(tiny_data, combination):
    config = MMGCNConfig(combination=combination)
    layer = GraphConvLayer(5, 6, config)
    graph = tiny_data.graph()
    x, ids = torch.randn(graph.num_nodes, 5), torch.randn(graph.num_nodes, 6)

    slope = config.negative_slope
    h = aggregate(graph, F.leaky_relu(layer.message(x), slope), "mean")
    own = F.leaky_relu(layer.own(x), slope) + ids
    if combination == "concat":
        expected = F.leaky_relu(layer.combine(torch.cat([h, own], 1)), slope)
    else:
        expected = F.leaky_relu(layer.combine(h) + own, slope)

    torch.testing.assert_close(layer(graph, x, ids), expected)
    assert layer.combine.in_features == (11 if combination == "concat" else 5)


def test_mean_fusion_is_the_sum_over_the_number_of_modalities(tiny_data):
    torch.manual_seed(0)
    summed = create_model("mmgcn", tiny_data, {**SMALL, "modality_fusion": "sum"})
    torch.manual_seed(0)
    mean = create_model("mmgcn", tiny_data, {**SMALL, "modality_fusion": "mean"})

    branches = summed.modality_representations()
    total = sum(branches.values())
    users, items = summed.representations()
    torch.testing.assert_close(torch.cat([users, items]), total)
    for got, want in zip(mean.embed(), summed.embed(), strict=True):
        torch.testing.assert_close(got, want / len(branches))


def test_id_and_preference_embeddings_are_trained(tiny_data):
    model = create_model("mmgcn", tiny_data, SMALL)
    embeddings = [model.id_embedding, *(b.preference for b in model.branches.values())]
    before = [e.detach().clone() for e in embeddings]

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    pairs = torch.as_tensor(tiny_data.train)
    neg = torch.arange(len(pairs)) % tiny_data.num_items
    model.loss(pairs[:, 0], pairs[:, 1], neg).total.backward()
    optimizer.step()

    parameters = set(model.parameters())
    for embedding, old in zip(embeddings, before, strict=True):
        assert embedding in parameters
        assert not torch.equal(embedding.detach(), old)


def test_branches_are_keyed_by_modality(tiny_data):
    model = create_model("mmgcn", tiny_data, {**SMALL, "num_layers": 3})

    assert list(model.branches) == ["visual", "acoustic"]
    for name, branch in model.branches.items():
        assert branch.project.in_features == tiny_data.features[name].shape[1]
        assert len(branch.layers) == 3


def test_ids_and_branches_learn_at_their_own_rates(tiny_data):
    model = create_model("mmgcn", tiny_data, {**SMALL, "modality_lr_scale": 0.1})
    ids, branches = model.parameter_groups(2e-3)
    assert ids["params"] == [model.id_embedding] and ids["lr"] == 2e-3
    assert branches["lr"] == pytest.approx(2e-4)
    grouped = [id(p) for group in (ids, branches) for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())


def test_layer_init_xavier_draws_the_published_codes_scale(tiny_data):
    options = {"embed_dim": 64, "latent_dim": 64, "combination": "element"}
    stds = {}
    for init in ("default", "xavier"):
        torch.manual_seed(0)
        model = create_model("mmgcn", tiny_data, {**options, "layer_init": init})
        layer = model.branches["visual"].layers[0]
        maps = (layer.message, layer.own, layer.combine)
        stds[init] = [float(m.weight.detach().std()) for m in maps]
    assert stds["xavier"] == pytest.approx([(2 / 128) ** 0.5] * 3, rel=0.05)
    assert stds["default"] == pytest.approx([(1 / 64 / 3) ** 0.5] * 3, rel=0.05)


def test_id_init_std_sets_the_scale_of_the_id_embeddings(tiny_data):
    torch.manual_seed(0)
    xavier = create_model("mmgcn", tiny_data, {"embed_dim": 64})
    num_nodes = tiny_data.num_users + tiny_data.num_items
    assert float(xavier.id_embedding.detach().std()) == pytest.approx(
        (2 / (num_nodes + 64)) ** 0.5, rel=0.1
    )
    normal = create_model("mmgcn", tiny_data, {"embed_dim": 64, "id_init_std": 0.3})
    assert float(normal.id_embedding.detach().std()) == pytest.approx(0.3, rel=0.1)


def test_a_dataset_without_features_is_refused_with_the_fix(tiny_data):
    id_only = ModelData(tiny_data.num_users, tiny_data.num_items, tiny_data.train, {})
    with pytest.raises(ConfigError, match="at least one item modality"):
        create_model("mmgcn", id_only)


@pytest.mark.parametrize(
    "values",
    [
        {"embed_dim": 0},
        {"latent_dim": 0},
        {"num_layers": 0},
        {"negative_slope": -1},
        {"modality_lr_scale": 0},
        {"id_init_std": 0.0},
    ],
)
def test_config_rejects_values_out_of_range(tiny_data, values):
    with pytest.raises(ConfigError, match="MMGCNConfig"):
        create_model("mmgcn", tiny_data, values)


@pytest.mark.parametrize("aggregation", ["mean", "symmetric"])
def test_a_short_training_run_finds_the_planted_preference(planted, aggregation):
    torch.manual_seed(0)
    values = {"embed_dim": 16, "latent_dim": 16, "aggregation": aggregation}
    model = create_model("mmgcn", planted.data, values)
    planted.fit(model, steps=80)

    # A random ranking scores about 1/3 here.
    assert planted.warm_recall(model) > 0.75
