"""Helpers of the model contract: the L2 term's sum of squares."""

import pytest
import torch

from mgat.models.base import squared_rows


@pytest.mark.parametrize("count", [3, 40])  # few rows are gathered, many counted
@pytest.mark.parametrize("shape", [(10, 4), (10,)])
def test_squared_rows_match_the_gathered_rows_with_gradients(count, shape):
    torch.manual_seed(0)
    table = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    rows = torch.randint(0, 10, (count,))
    rows[:2] = 7  # a row taken twice counts twice

    got = squared_rows(table, rows)
    (grad,) = torch.autograd.grad(got, table)
    plain = table.detach().clone().requires_grad_()
    expected = plain[rows].pow(2).sum()
    (expected_grad,) = torch.autograd.grad(expected, plain)

    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(grad, expected_grad)
