"""Row normalisation with its closed-form backward pass."""

import torch
import torch.nn.functional as F

from mgat.ops import row_normalize


def test_row_normalize_matches_torch_in_value_and_gradient():
    torch.manual_seed(0)
    x = torch.randn(13, 5, dtype=torch.double, requires_grad=True)
    upstream = torch.randn(13, 5, dtype=torch.double)

    (row_normalize(x) * upstream).sum().backward()
    mine = x.grad.clone()
    x.grad = None
    expected = F.normalize(x, dim=-1)
    (expected * upstream).sum().backward()

    torch.testing.assert_close(row_normalize(x), expected)
    torch.testing.assert_close(mine, x.grad)


def test_row_normalize_passes_gradcheck():
    torch.manual_seed(1)
    x = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(row_normalize, (x,))


def test_rows_below_eps_are_scaled_as_torch_scales_them():
    x = torch.randn(4, 3, dtype=torch.double)
    x[2] = 1e-14  # norm below eps: divided by eps, and the gradient is g / eps
    x.requires_grad_(True)
    upstream = torch.randn(4, 3, dtype=torch.double)

    (row_normalize(x) * upstream).sum().backward()
    mine = x.grad.clone()
    x.grad = None
    (F.normalize(x, dim=-1) * upstream).sum().backward()

    torch.testing.assert_close(mine, x.grad)
    torch.testing.assert_close(mine[2], upstream[2] / 1e-12)


def test_row_normalize_rows_have_unit_norm_in_float32():
    x = torch.randn(100, 256)
    norms = row_normalize(x).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(100))
