"""Graph helpers that do not need a model: nearest neighbours by content, the
sparse products (plain and in tiles on large graphs) and ID propagation."""

import numpy as np
import pytest
import torch

from mgat.graph import (
    _CACHE,
    TILE_NODES,
    ColumnTiles,
    Graph,
    edge_dot,
    index_means,
    nearest_neighbours,
    product,
    propagate_mean,
    spmm,
    symmetric_weights,
)


def brute_force(queries, base, k, exclude_self):
    similarity = torch.nn.functional.cosine_similarity(
        queries.unsqueeze(1), base.unsqueeze(0), dim=-1
    )
    if exclude_self:
        similarity.fill_diagonal_(-torch.inf)
    return similarity.topk(k, dim=1).indices


@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("chunk", [3, 1024])
def test_nearest_neighbours_match_the_full_similarity_matrix(exclude_self, chunk):
    torch.manual_seed(0)
    base = torch.randn(11, 5, dtype=torch.float64)
    found = nearest_neighbours(base, base, 4, exclude_self, chunk=chunk)
    assert found.shape == (11, 4) and found.dtype == torch.long
    assert torch.equal(found, brute_force(base, base, 4, exclude_self))
    rows = torch.arange(11).unsqueeze(1)
    assert (found == rows).any(1).all() != exclude_self


def test_nearest_neighbours_use_direction_not_length():
    base = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    queries = torch.tensor([[100.0, 1.0], [0.1, 0.2]])
    assert nearest_neighbours(queries, base, 1).squeeze(1).tolist() == [0, 2]


def test_nearest_neighbours_refuse_more_neighbours_than_rows():
    base = torch.randn(3, 2)
    with pytest.raises(ValueError, match=r"k must be in \[1, 2\]"):
        nearest_neighbours(base, base, 3, exclude_self=True)


def random_graph(num_users, num_items, num_pairs, seed=0):
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, num_users * num_items, num_pairs))
    pairs = np.stack([keys // num_items, keys % num_items], 1)
    return Graph.from_interactions(pairs, num_users, num_items)


def neighbour_sum(graph, values, x):
    """out[h] = sum over edges (h, t) of values * x[t], edge by edge."""
    out = torch.zeros(graph.num_nodes, x.shape[1], dtype=torch.float64)
    return out.index_add_(
        0, graph.row, values[:, None].double() * x[graph.col].double()
    )


@pytest.mark.parametrize("width", [7, 64, 1000])
@pytest.mark.parametrize("transposed", [False, True])
def test_column_tiles_multiply_like_the_whole_matrix(width, transposed):
    graph = random_graph(60, 90, 1500)
    values, x = torch.rand(graph.num_edges), torch.randn(graph.num_nodes, 5)
    tiles = ColumnTiles(graph, width)
    expected = values[graph.transpose] if transposed else values
    torch.testing.assert_close(
        tiles.operator(values, transposed)(x),
        neighbour_sum(graph, expected, x).float(),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("width", [7, 64, 1000])
def test_column_tiles_sample_products_in_csr_order(width):
    graph = random_graph(60, 90, 1500)
    a, b = torch.randn(graph.num_nodes, 5), torch.randn(graph.num_nodes, 5)
    got = ColumnTiles(graph, width).sampled_products(a, b)
    torch.testing.assert_close(got, (a[graph.row] * b[graph.col]).sum(1))


def test_column_tiles_reach_one_side_only():
    # A tile of users adds into item rows alone and a tile of items into user
    # rows alone, even where the width does not divide the number of users.
    graph = random_graph(60, 90, 1500)
    tiles = ColumnTiles(graph, 7)
    order = tiles.position.argsort()
    for start, stop, column, columns, row, rowptr, _ in tiles.tiles:
        sources, targets = graph.col[order[start:stop]], graph.row[order[start:stop]]
        assert column <= sources.min() and sources.max() < column + columns
        assert row <= targets.min() and targets.max() < row + len(rowptr) - 1
        users = column < graph.num_users
        assert (column + columns <= 60) if users else (column >= 60)
        assert ((targets >= 60) if users else (targets < 60)).all()


def test_large_graphs_multiply_in_tiles_with_the_same_gradients():
    # Past 2 * TILE_NODES nodes, the sparse kernels run tile by tile.
    graph = random_graph(2 * TILE_NODES, 20_000, 200_000)
    assert graph.num_nodes > 2 * TILE_NODES
    values = torch.rand(graph.num_edges, requires_grad=True)
    x = torch.randn(graph.num_nodes, 4, requires_grad=True)
    y = torch.randn(graph.num_nodes, 4, requires_grad=True)
    out = spmm(graph, values, x) + spmm(graph, edge_dot(graph, x, y), y)
    weights = torch.randn(out.shape)
    grads = torch.autograd.grad((out * weights).sum(), (values, x, y))

    plain = [t.detach().double().requires_grad_() for t in (values, x, y)]
    reference = neighbour_sum(graph, plain[0], plain[1]) + neighbour_sum(
        graph, (plain[1][graph.row] * plain[2][graph.col]).sum(1), plain[2]
    )
    expected = torch.autograd.grad((reference * weights.double()).sum(), plain)
    assert f"column_tiles_{TILE_NODES}" in _CACHE[graph.col][1]
    torch.testing.assert_close(out.double(), reference, rtol=1e-4, atol=1e-4)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


def test_product_ignores_what_its_output_buffer_held():
    # product() writes into an uninitialised buffer, relying on addmm with
    # beta=0 ignoring the buffer's contents, NaN included.
    graph = random_graph(30, 40, 300)
    values, x = torch.rand(graph.num_edges), torch.randn(graph.num_nodes, 6)
    poisoned = torch.full((graph.num_nodes, 6), float("nan"))
    poisoned.addmm_(graph.csr(values), x, beta=0)
    expected = neighbour_sum(graph, values, x).float()
    torch.testing.assert_close(poisoned, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        product(graph.csr(values), x), expected, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("hops", [0, 1, 4])
def test_propagate_mean_matches_a_chain_of_products_and_its_gradients(hops):
    graph = random_graph(25, 35, 260, seed=3)
    x = torch.randn(graph.num_nodes, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(graph.num_nodes, 5, dtype=torch.float64)
    out = propagate_mean(graph, x, hops)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)

    plain = x.detach().clone().requires_grad_()
    edge_weights = symmetric_weights(graph).double()
    hop, total = plain, plain
    for _ in range(hops):
        hop = neighbour_sum(graph, edge_weights, hop)
        total = total + hop
    expected = total / (hops + 1)
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), plain)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad, expected_grad)
    assert out.data_ptr() != x.data_ptr()  # the input is not written over


def test_csr_indices_are_int32_and_made_once_per_graph():
    graph = random_graph(20, 30, 200)
    first, second = (
        graph.csr(torch.rand(graph.num_edges)),
        graph.csr(torch.rand(graph.num_edges)),
    )
    assert first.crow_indices().dtype == torch.int32
    assert first.col_indices().data_ptr() == second.col_indices().data_ptr()
    # The SDDMM writes into a CSR tensor that shares these indices.
    x = torch.randn(graph.num_nodes, 3)
    expected = (x[graph.row] * x[graph.col]).sum(1)
    torch.testing.assert_close(edge_dot(graph, x, x), expected)
    assert torch.equal(first.col_indices().long(), graph.col)
    assert torch.equal(first.crow_indices().long(), graph.rowptr)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_index_means_match_embedding_bag_with_gradients(dtype):
    torch.manual_seed(0)
    x = torch.randn(12, 5, dtype=dtype, requires_grad=True)
    # Row 1 names item 2 twice: it counts twice in the mean, as in embedding_bag.
    index = torch.tensor([[0, 1, 3], [2, 2, 7], [7, 6, 5], [4, 0, 1]])
    weights = torch.randn(4, 5, dtype=dtype)

    out = index_means(index, x, offset=4)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    plain = x.detach().clone().requires_grad_()
    expected = torch.nn.functional.embedding_bag(index, plain[4:], mode="mean")
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), plain)

    assert out.dtype == dtype
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad, expected_grad)
    assert grad[:4].abs().sum() == 0  # rows before the offset get no gradient


def test_index_means_follow_an_index_changed_in_place():
    x = torch.arange(6.0).unsqueeze(1)
    index = torch.tensor([[0, 1], [2, 3]])
    torch.testing.assert_close(index_means(index, x), torch.tensor([[0.5], [2.5]]))
    index[1] = torch.tensor([4, 5])
    torch.testing.assert_close(index_means(index, x), torch.tensor([[0.5], [4.5]]))
    assert index_means(index[:0], x).shape == (0, 1)
