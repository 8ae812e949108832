"""A straightforward MGAT layer, written the way research code usually is.

Used only to measure the library's layer against (and, in the tests, to check
that both compute the same thing). It materialises per-edge copies of both
endpoints' vectors, multiplies them, and scatters the messages back with
``index_add``: every step allocates (E, D) tensors. It reads the parameters of a
``mgat.models.mgat.GatedAttentionLayer`` so that both run the same weights.

Shapes: N nodes, E directed edges, D width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mgat.graph import Graph
from mgat.models.mgat import GatedAttentionLayer, ModalityBranch


def reference_layer(
    layer: GatedAttentionLayer, graph: Graph, x: torch.Tensor, id_embedding
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The layer's output, edge weights and gates, computed edge by edge."""
    cfg = layer.config
    slope = cfg.negative_slope
    target, neighbour = graph.row, graph.col
    xw = x @ layer.transform.weight.t()

    x_target = xw[target]  # (E, D) copy
    x_neighbour = xw[neighbour]  # (E, D) copy
    logits = (x_target * F.leaky_relu(x_neighbour, slope)).sum(-1)
    gate = reference_gate(layer, graph, x_target, x_neighbour, logits)
    if cfg.gate_placement == "softmax":
        weight = scatter_softmax(logits * gate, target, graph.num_nodes)
    else:
        weight = scatter_softmax(logits, target, graph.num_nodes) * gate

    messages = x_neighbour * weight.unsqueeze(-1)  # (E, D) copy
    summed = torch.zeros_like(xw).index_add(0, target, messages)
    message = F.normalize(summed + layer.bias, dim=-1)
    own = F.leaky_relu(layer.self_to_id(x), slope) + id_embedding
    out = layer.message_to_id(F.leaky_relu(message, slope)) + own
    if cfg.output_activation:
        out = F.leaky_relu(out, slope)
    return out, weight, gate


def reference_gate(layer, graph, x_target, x_neighbour, logits) -> torch.Tensor:
    cfg = layer.config
    if cfg.gate == "inner":
        node = graph.col if cfg.gate_degree == "neighbour" else graph.row
        return torch.sigmoid(logits / graph.degree[node].sqrt())
    if cfg.gate == "concat":
        joint = torch.cat([x_target, x_neighbour], dim=-1)  # (E, 2D) copy
        weight = torch.cat(
            [layer.gate_target.weight, layer.gate_neighbour.weight], dim=-1
        )
        return torch.sigmoid(joint @ weight.t() + layer.gate_target.bias).squeeze(-1)
    summed = layer.gate_sum(x_target + x_neighbour).squeeze(-1)
    product = (x_target * x_neighbour * layer.gate_product).sum(-1)
    return torch.sigmoid(summed + product)


def scatter_softmax(logits: torch.Tensor, index: torch.Tensor, size: int):
    """Softmax of edge logits grouped by ``index``, via scatter max and sum."""
    node_max = torch.full((size,), float("-inf"), dtype=logits.dtype)
    node_max = node_max.scatter_reduce(0, index, logits.detach(), "amax")
    exp = torch.exp(logits - node_max[index])
    total = torch.zeros(size, dtype=logits.dtype).index_add(0, index, exp)
    return exp / total[index]


def reference_branch(
    branch: ModalityBranch, graph: Graph, id_embedding: torch.Tensor
) -> torch.Tensor:
    """A whole modality branch with the reference layer in place of the library's."""
    x = torch.cat([branch.preference, branch.item_inputs(branch.features)])
    outputs = []
    for layer in branch.layers:
        x, _, _ = reference_layer(layer, graph, F.normalize(x, dim=-1), id_embedding)
        outputs.append(x)
    if branch.config.layer_combine == "concat":
        return torch.cat(outputs, dim=-1)
    return torch.stack(outputs).sum(0)
