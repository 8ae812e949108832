"""Graph helpers that do not need a model: nearest neighbours by content."""

import pytest
import torch

from mgat.graph import nearest_neighbours


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
