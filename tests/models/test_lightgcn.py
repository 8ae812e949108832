"""LightGCN: symmetric-normalised propagation, layer mean, planted preference."""

from __future__ import annotations

import pytest
import torch

from mgat.errors import ConfigError
from mgat.graph import symmetric_weights
from mgat.models import create_model


def dense_propagation(data) -> torch.Tensor:
    """(N, N) D^-1/2 A D^-1/2 of the bipartite graph, built densely."""
    num_nodes = data.num_users + data.num_items
    adjacency = torch.zeros(num_nodes, num_nodes)
    users = torch.as_tensor(data.train[:, 0])
    items = torch.as_tensor(data.train[:, 1]) + data.num_users
    adjacency[users, items] = adjacency[items, users] = 1.0
    scale = adjacency.sum(1).clamp_min(1).rsqrt()
    return scale[:, None] * adjacency * scale[None, :]


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_representations_average_the_propagated_layers(tiny_data, num_layers):
    model = create_model("lightgcn", tiny_data, {"num_layers": num_layers})
    propagation = dense_propagation(tiny_data)

    layer = model.embedding.detach()
    layers = [layer]
    for _ in range(num_layers):
        layer = propagation @ layer
        layers.append(layer)
    expected = torch.stack(layers).mean(0)

    users, items = model.embed()
    torch.testing.assert_close(torch.cat([users, items]), expected)


def test_edge_weights_are_inverse_root_degree_products(tiny_data):
    model = create_model("lightgcn", tiny_data)
    graph = model.graph
    weights = symmetric_weights(graph)

    dense = dense_propagation(tiny_data)
    torch.testing.assert_close(weights, dense[graph.row, graph.col])


def test_an_item_without_interactions_keeps_a_scaled_input(tiny_data):
    model = create_model("lightgcn", tiny_data, {"num_layers": 3})
    cold = tiny_data.num_items - 1  # the fixture's last item has no interaction
    _, items = model.embed()

    expected = model.embedding[tiny_data.num_users + cold].detach() / 4
    torch.testing.assert_close(items[cold], expected)


def test_regularized_terms_are_the_layer_zero_batch_embeddings(tiny_data):
    model = create_model("lightgcn", tiny_data)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    ((table, rows),) = model.regularized(users, pos, neg)

    offset = tiny_data.num_users
    assert table is model.embedding
    assert torch.equal(rows, torch.cat([users, pos + offset, neg + offset]))


@pytest.mark.parametrize(
    "values", [{"embed_dim": 0}, {"num_layers": -1}, {"init_std": -1.0}]
)
def test_config_rejects_values_out_of_range(tiny_data, values):
    with pytest.raises(ConfigError, match="LightGCNConfig"):
        create_model("lightgcn", tiny_data, values)


def test_a_short_training_run_finds_the_planted_preference(planted):
    torch.manual_seed(0)
    model = create_model("lightgcn", planted.data, {"embed_dim": 16})
    planted.fit(model, steps=80)

    # A random ranking scores about 1/3 here.
    assert planted.warm_recall(model) > 0.75
