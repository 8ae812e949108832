"""Dense per-row operations with hand-written backward passes.

``torch.nn.functional.normalize`` builds its backward pass from the division's
rules: the quotient's gradient, and the norm's, each a pass over the (N, D)
input, with their temporaries. On the large node matrices of a graph model those
passes cost more than the products around them (docs/performance.md). The
gradient of a row normalisation has a closed form that needs one row-wise dot
product and one fused update.

Shapes: N rows, D columns.
"""

from __future__ import annotations

import torch

EPS = 1e-12


def row_normalize(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Each row of ``x`` divided by its L2 norm (at least ``eps``).

    The same values and gradients as ``F.normalize(x, dim=-1, eps=eps)``.

        y = x / max(||x||, eps)
        dL/dx = (g - y <g, y>) / ||x||   where ||x|| > eps,   g / eps elsewhere

    Shapes:
        x: (N, D); returns (N, D).
    """
    return _RowNormalize.apply(x, eps)


class _RowNormalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, eps):
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)  # (N, 1)
        inverse = norm.clamp_min(eps).reciprocal()
        y = x * inverse
        # Rows at the clamp are scaled, not projected: their gradient is g / eps.
        projected = (norm > eps).to(x.dtype)
        ctx.save_for_backward(y, inverse, projected)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, inverse, projected = ctx.saved_tensors
        along = torch.linalg.vecdot(grad, y, dim=-1).unsqueeze(-1)  # (N, 1)
        return torch.addcmul(grad, y, along * projected, value=-1) * inverse, None
