"""MGAT: gated graph attention over one user-item graph per modality.

Tao, Wei, Wang, He, Huang, Chua, "MGAT: Multimodal Graph Attention Network for
Recommendation", Information Processing & Management 57(5), 2020.

Each modality m has its own branch over the shared user-item graph. Items enter a
branch as ``tanh(W_m f_i)``, users as a trainable preference vector, both
L2-normalised. A gated attention layer then updates node h from its neighbours t:

    s_ht = <W x_h, LeakyReLU(W x_t)>                     (attention logit)
    g_ht = gate(h, t) in (0, 1)                          (does t pass its signal?)
    a_ht = softmax_t(s_ht * g_ht)        (gate inside the softmax, released code)
         | softmax_t(s_ht) * g_ht        (gate multiplying the weight, paper)
    m_h  = normalize(sum_t a_ht W x_t + b)
    x_h' = LeakyReLU(W_msg LeakyReLU(m_h) + LeakyReLU(W_self x_h) + e_h)

where e_h is the node's trainable ID embedding (shared by all modalities), so each
layer fuses content with collaborative signal as MMGCN's element-wise combination
does. Layers stack; a branch returns its layer outputs concatenated or summed.
Modalities are fused by mean, sum or a learned softmax-weighted sum, and the
score of (u, i) is the inner product of the fused representations.

The three gates: ``inner`` is sigmoid(s_ht / sqrt(d)) with d the degree of the
neighbour t (released code) or of the target h (paper); ``concat`` is
sigmoid(w . [W x_h || W x_t] + c); ``bi`` is
sigmoid(w1 . (W x_h + W x_t) + w2 . (W x_h * W x_t) + c). The paper found the
inner-product gate best; the other two add parameters.

Deviations from the released code, all deliberate: every learnable tensor
(ID and preference embeddings) is an ``nn.Parameter`` (the released code keeps
them as plain tensors); ``num_layers`` layers really run (the released code
returns after the first); every layer's input is L2-normalised.

Shapes: U users, I items, N = U + I nodes, E directed edges, M modalities,
D ID width, D_m modality latent width, L layers, F_m feature width.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mgat.errors import ConfigError, DataError
from mgat.graph import (
    Graph,
    edge_dot,
    index_means,
    nearest_neighbours,
    propagate_mean,
    segment_softmax,
    spmm,
)
from mgat.models.base import (
    Attribution,
    ModelData,
    Recommender,
    TableRows,
    check_item_lists,
    id_embeddings,
)
from mgat.ops import row_normalize

logger = logging.getLogger(__name__)

RELEASED_LATENT_DIMS = {"visual": 256, "acoustic": 128, "textual": 100}


@dataclass
class MGATConfig:
    """Hyperparameters of MGAT.

    Args:
        embed_dim: D, width of the ID embeddings and of every layer's output.
        latent_dim: D_m of a modality not listed in ``latent_dims``.
        latent_dims: D_m per modality name (the released code: visual 256,
            acoustic 128, textual 100).
        num_layers: L >= 1 gated attention layers.
        gate: ``inner``, ``concat`` or ``bi``.
        gate_placement: ``softmax`` (gate inside the softmax, released code) or
            ``multiply`` (gate multiplies the attention weight).
        gate_degree: ``neighbour`` (released code) or ``target`` (paper): whose
            degree scales the inner-product gate.
        layer_combine: ``concat`` or ``sum`` of the layer outputs.
        modality_fusion: ``mean``, ``sum`` or ``weighted`` (learned softmax weights).
        negative_slope: slope of every LeakyReLU.
        output_activation: apply LeakyReLU to each layer's output (the released
            code does); without it the outputs can point anywhere, not only
            near the positive orthant.
        edge_dropout: fraction of edges dropped at random per training step.
        id_layers: hops of linear, symmetric-normalised propagation of the ID
            embeddings (LightGCN's rule, layer mean) whose result is laid beside
            the fused modalities; 0 (the paper and the released code) leaves it
            out. Not part of MGAT as published: see docs/mgat.md.
        modality_scale: the factor on the fused modalities when ``id_layers`` is
            set, which balances the two parts of the representation.
        id_init_std: standard deviation of the normal initial ID embeddings;
            None keeps the released code's Xavier initialisation.
        modality_lr_scale: the learning rate of the modality branches relative
            to the training ``lr``. Adam's steps do not shrink with
            ``modality_scale``, so this is what slows the branches down.
        content_bias: add to every score an item bias learned from each
            modality's features, ``sum_m w_m . f_i^m`` (VBPR's content bias,
            He and McAuley, AAAI 2016). It gives items without interactions a
            score of their own beside the ID bias-free inner products.
        content_factors: K > 0 adds VBPR's user-specific content term per
            modality, ``<theta_u^m, E_m f_i^m>``, outside the graph layers: a
            trainable (U, K) user factor and a linear map of the features.
        recompute: keep only each attention layer's inputs for the backward
            pass and recompute the rest there (activation checkpointing): less
            memory for large graphs, about one more forward pass of time.
        item_dropout: fraction of items that, at each training step, are
            scored as if they had no interaction: from their content, the
            layer biases and the mean item ID only. It makes the content path
            rank items on its own, which is what items without interactions
            need (the idea of DropoutNet, Volkovs et al., NeurIPS 2017).
        similar_items: K > 0 adds to every item the mean ID embedding of its K
            most similar items by content, in each modality (cosine similarity
            of the raw features; a fixed item-item graph, as in FREEDOM, Zhou
            and Shen, ACM MM 2023, after LATTICE, Zhang et al., ACM MM 2021).
            Items with few or no interactions borrow the collaborative signal
            of items that look like them. Needs ``id_layers``.
        similar_items_scale: the factor on that mean.
        fusion_init: initial weights of each layer's two maps into the ID
            space (neighbourhood message and own state): ``default``, PyTorch's
            uniform with bound 1/sqrt(fan_in), or ``xavier``, normal with
            variance 2 / (fan_in + fan_out), as the released code draws them.
        train_embeddings: whether the ID and user preference embeddings learn.
            False reproduces the released code, whose optimizer never sees
            them: they keep their random initial values (docs/mgat.md).
    """

    embed_dim: int = 64
    latent_dim: int = 128
    latent_dims: dict[str, int] = field(
        default_factory=lambda: dict(RELEASED_LATENT_DIMS)
    )
    num_layers: int = 1
    gate: Literal["inner", "concat", "bi"] = "inner"
    gate_placement: Literal["softmax", "multiply"] = "softmax"
    gate_degree: Literal["neighbour", "target"] = "neighbour"
    layer_combine: Literal["concat", "sum"] = "concat"
    modality_fusion: Literal["mean", "sum", "weighted"] = "mean"
    negative_slope: float = 0.01
    output_activation: bool = True
    edge_dropout: float = 0.0
    id_layers: int = 0
    modality_scale: float = 1.0
    id_init_std: float | None = None
    modality_lr_scale: float = 1.0
    content_bias: bool = False
    content_factors: int = 0
    recompute: bool = False
    item_dropout: float = 0.0
    similar_items: int = 0
    similar_items_scale: float = 1.0
    fusion_init: Literal["default", "xavier"] = "default"
    train_embeddings: bool = True

    def validate(self) -> None:
        if self.embed_dim < 1 or self.latent_dim < 1:
            raise ConfigError("MGATConfig: embed_dim and latent_dim must be >= 1.")
        if self.num_layers < 1:
            raise ConfigError(
                f"MGATConfig.num_layers: expected >= 1, got {self.num_layers}."
            )
        if self.content_factors < 0:
            raise ConfigError(
                "MGATConfig.content_factors: expected >= 0, got "
                f"{self.content_factors}."
            )
        if self.similar_items < 0 or (self.similar_items and not self.id_layers):
            raise ConfigError(
                "MGATConfig.similar_items: expected 0, or K >= 1 together with "
                f"id_layers >= 1; got similar_items={self.similar_items}, "
                f"id_layers={self.id_layers}. Set id_layers (e.g. 4), or "
                "similar_items=0 to leave the item-item term out."
            )
        if self.id_layers < 0:
            raise ConfigError(
                f"MGATConfig.id_layers: expected >= 0, got {self.id_layers}."
            )
        if not 0.0 <= self.edge_dropout < 1.0:
            raise ConfigError(
                f"MGATConfig.edge_dropout: expected [0, 1), got {self.edge_dropout}."
            )
        if not 0.0 <= self.item_dropout <= 1.0:
            raise ConfigError(
                f"MGATConfig.item_dropout: expected [0, 1], got {self.item_dropout}."
            )

    def width_of(self, modality: str) -> int:
        return self.latent_dims.get(modality, self.latent_dim)


@dataclass
class AttentionTrace:
    """What one layer of one modality did on every edge.

    Attributes:
        weight: (E,) the effective weight of neighbour t's message to h.
        gate: (E,) the gate value g_ht in (0, 1).
    """

    weight: torch.Tensor
    gate: torch.Tensor


#: ``known -> result`` of one sparse kernel, given its result when it is known.
Kernel = Callable[[torch.Tensor | None], torch.Tensor]


class KeptResults(dict):
    """A layer's sparse kernel results, kept from its first forward pass for its
    recomputation under activation checkpointing.

    The recomputation then runs only the cheap element-wise and dense steps: the
    kernels' results depend on nothing the recomputation changes, and their
    backward passes need only their inputs, which it recomputes. Each result is
    dropped once reused. Memory: the layer's (E,) logits and (N, D) messages,
    held from the forward pass to the layer's backward pass.
    """

    def reuse(self, name: str, compute: Kernel) -> torch.Tensor:
        """``compute(known)``, ``known`` being the kept result of that name."""
        known = self.pop(name, None)
        result = compute(known)
        if known is None:
            self[name] = result.detach()
        return result


def _compute(name: str, compute: Kernel) -> torch.Tensor:
    """``KeptResults.reuse`` where nothing is kept."""
    return compute(None)


class GatedAttentionLayer(nn.Module):
    """One gated attention layer of one modality, with fusion into the ID space.

    Args:
        in_dim: width of the layer's input node representations.
        out_dim: D, the ID embedding width.
        config: the model's config (gate kind, placement, degree, slope).
    """

    def __init__(self, in_dim: int, out_dim: int, config: MGATConfig) -> None:
        super().__init__()
        self.config = config
        self.transform = nn.Linear(in_dim, in_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(in_dim))
        self.message_to_id = nn.Linear(in_dim, out_dim)
        self.self_to_id = nn.Linear(in_dim, out_dim)
        if config.gate == "concat":
            self.gate_target = nn.Linear(in_dim, 1)
            self.gate_neighbour = nn.Linear(in_dim, 1, bias=False)
        elif config.gate == "bi":
            self.gate_sum = nn.Linear(in_dim, 1)
            self.gate_product = nn.Parameter(torch.empty(in_dim).normal_(0, 0.1))
        nn.init.xavier_uniform_(self.transform.weight)
        if config.fusion_init == "xavier":
            nn.init.xavier_normal_(self.message_to_id.weight)
            nn.init.xavier_normal_(self.self_to_id.weight)

    def forward(
        self,
        graph: Graph,
        x: torch.Tensor,
        id_embedding: torch.Tensor,
        kept: KeptResults | None = None,
    ) -> tuple[torch.Tensor, AttentionTrace]:
        """Update every node from its neighbours.

        ``kept``: under activation checkpointing, the sparse kernels' results
        of the first forward pass, reused when it is recomputed.

        Shapes:
            x: (N, in_dim); id_embedding: (N, D); returns (N, D) and (E,) traces.
        """
        slope = self.config.negative_slope
        reuse = kept.reuse if kept is not None else _compute
        xw = self.transform(x)
        neighbour = F.leaky_relu(xw, slope)
        logits = reuse("logits", lambda known: edge_dot(graph, xw, neighbour, known))
        gate = self._gate(graph, xw, logits, reuse)

        if self.config.gate_placement == "softmax":
            weight = segment_softmax(graph, logits * gate)
        else:
            weight = segment_softmax(graph, logits) * gate
        if self.training and self.config.edge_dropout:
            keep = torch.rand_like(weight) >= self.config.edge_dropout
            weight = weight * keep / (1.0 - self.config.edge_dropout)

        message = reuse("message", lambda known: spmm(graph, weight, xw, known))
        # In place: autograd keeps spmm's inputs, not its output. A kept output
        # must stay as the kernel left it.
        message = message + self.bias if kept is not None else message.add_(self.bias)
        message = row_normalize(message)
        own = F.leaky_relu(self.self_to_id(x), slope) + id_embedding
        out = self.message_to_id(F.leaky_relu(message, slope)) + own
        if self.config.output_activation:
            out = F.leaky_relu(out, slope)
        return out, AttentionTrace(weight, gate)

    def _gate(
        self,
        graph: Graph,
        xw: torch.Tensor,
        logits: torch.Tensor,
        reuse: Callable[[str, Kernel], torch.Tensor],
    ) -> torch.Tensor:
        """(E,) gate values in (0, 1); ``reuse`` as in ``forward``."""
        kind = self.config.gate
        if kind == "inner":
            scale = graph.edge_degree_rsqrt(self.config.gate_degree)
            return torch.sigmoid(logits * scale)
        if kind == "concat":
            target = self.gate_target(xw).squeeze(-1)
            neighbour = self.gate_neighbour(xw).squeeze(-1)
            return torch.sigmoid(target[graph.row] + neighbour[graph.col])
        # w1 . (a + b) = w1 . a + w1 . b: per-node scalars instead of per-edge sums.
        node_sum = (xw @ self.gate_sum.weight.t()).squeeze(-1)
        scaled = xw * self.gate_product
        product = reuse("product", lambda known: edge_dot(graph, scaled, xw, known))
        pair_sum = node_sum[graph.row] + node_sum[graph.col] + self.gate_sum.bias
        return torch.sigmoid(pair_sum + product)


class ModalityBranch(nn.Module):
    """One modality's projection, user preferences and attention layers.

    Shapes:
        features: (I, F_m) buffer; forward returns (N, L * D) or (N, D).
    """

    def __init__(
        self, features: torch.Tensor, num_users: int, config: MGATConfig, width: int
    ) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("features", features, persistent=False)
        self.project = nn.Linear(features.shape[1], width)
        self.preference = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(num_users, width))
        )
        dims = [width] + [config.embed_dim] * (config.num_layers - 1)
        self.layers = nn.ModuleList(
            GatedAttentionLayer(d, config.embed_dim, config) for d in dims
        )

    def item_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """(I', D_m) item node inputs from (I', F_m) features."""
        return torch.tanh(self.project(features))

    def forward(
        self, graph: Graph, id_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, list[AttentionTrace]]:
        x = torch.cat([self.preference, self.item_inputs(self.features)])
        outputs, traces = [], []
        recompute = self.config.recompute and torch.is_grad_enabled()
        for layer in self.layers:
            inputs = row_normalize(x)
            if recompute:
                kept = KeptResults()
                x, trace = checkpoint(
                    layer, graph, inputs, id_embedding, kept, use_reentrant=False
                )
            else:
                x, trace = layer(graph, inputs, id_embedding)
            outputs.append(x)
            traces.append(trace)
        if self.config.layer_combine == "concat":
            return torch.cat(outputs, dim=-1), traces
        return torch.stack(outputs).sum(0), traces


class MGAT(Recommender):
    """The Multimodal Graph Attention Network (see the module docstring)."""

    name = "mgat"
    config_class = MGATConfig

    def __init__(self, data: ModelData, config: MGATConfig) -> None:
        super().__init__(data, config)
        data.require_modalities("MGAT")
        num_nodes = data.num_users + data.num_items
        self.id_embedding = id_embeddings(
            num_nodes, config.embed_dim, config.id_init_std
        )
        self.branches = nn.ModuleDict(
            {
                name: ModalityBranch(
                    torch.as_tensor(array, dtype=torch.float32),
                    data.num_users,
                    config,
                    config.width_of(name),
                )
                for name, array in data.features.items()
            }
        )
        if config.modality_fusion == "weighted":
            self.modality_logits = nn.Parameter(torch.zeros(len(self.branches)))
        if config.content_bias:
            self.content_bias = nn.ModuleDict(
                {
                    name: nn.Linear(branch.project.in_features, 1, bias=False)
                    for name, branch in self.branches.items()
                }
            )
            for linear in self.content_bias.values():
                nn.init.zeros_(linear.weight)
        if config.content_factors:
            width = config.content_factors
            self.content_users = nn.ParameterDict(
                {
                    name: nn.Parameter(
                        torch.empty(data.num_users, width).normal_(0, 0.1)
                    )
                    for name in self.branches
                }
            )
            self.content_items = nn.ModuleDict(
                {
                    name: nn.Linear(
                        branch.project.in_features, config.content_factors, bias=False
                    )
                    for name, branch in self.branches.items()
                }
            )
            for linear in self.content_items.values():
                nn.init.zeros_(linear.weight)
        # K most similar items, fewer where the catalogue is smaller than K + 1.
        self.similar_k = min(config.similar_items, data.num_items - 1)
        if config.similar_items:
            if self.similar_k < 1:
                raise ConfigError(
                    "MGATConfig.similar_items: needs at least 2 items; the data "
                    f"has {data.num_items}. Set similar_items=0."
                )
            if self.similar_k < config.similar_items:
                logger.warning(
                    "similar_items=%d: only %d other items; using %d",
                    config.similar_items,
                    self.similar_k,
                    self.similar_k,
                )
            # Saved with the model, so that a loaded model scores with the very
            # neighbours it was trained with, even where similarities tie.
            neighbours = self._neighbours_of(self._features(), exclude_self=True)
            self.register_buffer("item_neighbours", neighbours)
        # Items without training interactions: their ID rows get no collaborative
        # evidence, so the model uses the mean of the seen items' rows instead.
        unseen = self.graph.degree == 0
        unseen[: data.num_users] = False  # only items take the mean
        self.register_buffer("unseen_nodes", unseen, persistent=False)
        self.has_unseen_items = bool(unseen.any())
        seen_items = ~unseen
        seen_items[: data.num_users] = False
        # (N,) 1 / count at the seen items' rows: their mean is one product.
        weights = seen_items.float() / seen_items.sum().clamp_min(1)
        self.register_buffer("seen_item_weights", weights, persistent=False)
        if not config.train_embeddings:
            self.id_embedding.requires_grad_(False)
            for branch in self.branches.values():
                branch.preference.requires_grad_(False)

    def node_ids(self) -> torch.Tensor:
        """(N, D) ID embeddings, with unseen items' rows at the seen items' mean.

        An item with no training interaction is never a positive, so its own ID
        row carries no evidence (at most that it was drawn as a negative). Like a
        new item (``new_item_parts``), it enters with an average item's ID and
        is told apart from the others by its content alone.
        """
        if not self.has_unseen_items:
            return self.id_embedding
        unseen = self.unseen_nodes.unsqueeze(1)
        return torch.where(unseen, self._seen_item_mean(), self.id_embedding)

    def _seen_item_mean(self) -> torch.Tensor:
        """(D,) the mean ID row of the items seen in training.

        A weighted sum over all N rows: its backward writes one (N, D) gradient,
        where gathering the rows would zero-fill one for the gather and one for
        the slice of item rows. Kept in float32 under mixed precision.
        """
        with torch.autocast(self.device.type, enabled=False):
            return self.seen_item_weights @ self.id_embedding

    def modality_weights(self) -> torch.Tensor:
        """(M,) the factor each modality's representation is fused with."""
        count = len(self.branches)
        fusion = self.config.modality_fusion
        if fusion == "weighted":
            return torch.softmax(self.modality_logits, 0)
        scale = 1.0 / count if fusion == "mean" else 1.0
        return torch.full((count,), scale, device=self.device)

    def modality_representations(
        self, with_traces: bool = False, ids: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, list[AttentionTrace]]]:
        """Per-modality (N, D') node representations, before fusion, and traces.

        ``ids`` are the (N, D) ID rows the layers fuse (default: ``node_ids()``).
        """
        graph = self.graph
        ids = self.node_ids() if ids is None else ids
        reps, traces = {}, {}
        for name, branch in self.branches.items():
            reps[name], layer_traces = branch(graph, ids)
            if with_traces:
                traces[name] = layer_traces
        return reps, traces

    def collaborative(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) ID embeddings propagated ``id_layers`` hops, layer mean.

        ``e^(k+1) = D^-1/2 A D^-1/2 e^(k)`` and the result is the mean of
        ``e^(0..K)`` (He et al., "LightGCN", SIGIR 2020). ``ids`` as in
        ``modality_representations``.
        """
        ids = self.node_ids() if ids is None else ids
        return propagate_mean(self.graph, ids, self.config.id_layers)

    def _laid_parts(
        self, with_traces: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, list[AttentionTrace]]]:
        """Named (N, D'') parts that sum to the node representations, and traces.

        The modality parts ``w_m r_m``, the collaborative part (``id_layers``)
        and the content terms, laid out side by side (``_side_by_side``,
        ``_with_content_terms``).
        """
        ids = self.node_ids()
        reps, traces = self.modality_representations(with_traces, ids)
        weights = self.modality_weights()
        weighted = {m: w * r for (m, r), w in zip(reps.items(), weights, strict=True)}
        collaborative = self.collaborative(ids) if self.config.id_layers else None
        laid = self._side_by_side(weighted, collaborative)
        if self.config.similar_items:
            laid = self._with_similar_items(
                laid, self.num_users, self.item_neighbours, ids
            )
        return self._with_content_terms(laid, self.num_users, self._features()), traces

    def _fused(self) -> torch.Tensor:
        """(N, D'') node representations: the sum of ``_laid_parts``.

        Computed without laying each part out at full width, which only
        explanations need: the modality parts fill the left columns, the
        collaborative and similar-item parts the next, and each modality's
        content terms a block of their own. The sums run in the parts' order
        with the same factors, so the result equals the parts' sum exactly.
        """
        config = self.config
        ids = self.node_ids()
        reps, _ = self.modality_representations(False, ids)
        weights = self.modality_weights()
        weighted = [w * r for r, w in zip(reps.values(), weights, strict=True)]
        if not config.id_layers:
            columns = [sum(weighted)]
        else:
            collaborative = self.collaborative(ids)
            if config.similar_items:
                items = self._similar_item_means(self.item_neighbours, ids)
                users, tail = collaborative.split([self.num_users, self.num_items])
                collaborative = torch.cat([users, tail + items])
            scale = config.modality_scale
            columns = [sum(scale * part for part in weighted), collaborative]
        if config.content_bias or config.content_factors:
            features = self._features()
            columns += [
                self._content_block(name, self.num_users, features[name], False)
                for name in self.branches
            ]
        return torch.cat(columns, 1) if len(columns) > 1 else columns[0]

    def _neighbours_of(
        self, features: dict[str, torch.Tensor], exclude_self: bool = False
    ) -> torch.Tensor:
        """(n, M * K) the training items most similar to each of n items, K
        per modality (``similar_items``).

        Shapes:
            features: modality name to (n, F_m).
        """
        k = self.similar_k
        return torch.cat(
            [
                nearest_neighbours(features[name], branch.features, k, exclude_self)
                for name, branch in self.branches.items()
            ],
            1,
        )

    def _with_similar_items(
        self,
        laid: dict[str, torch.Tensor],
        num_users: int,
        neighbours: torch.Tensor,
        ids: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``laid`` with a ``similar_items`` part: zero for the ``num_users``
        user rows, and for the item rows after them the scaled mean ID of each
        item's ``neighbours``, in the collaborative columns.

        Shapes:
            laid: name to (num_users + n, D' + D), ``id`` among them;
            neighbours: (n, M * K); ids: (N, D) ID rows of the training nodes.
        """
        items = self._similar_item_means(neighbours, ids)
        block = torch.cat([items.new_zeros(num_users, items.shape[1]), items])
        left = laid["id"].shape[1] - items.shape[1]
        return {**laid, "similar_items": F.pad(block, (left, 0))}

    def _similar_item_means(
        self, neighbours: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        """(n, D) the scaled mean ID row of each item's (n, M * K) neighbours."""
        items = index_means(neighbours, ids, offset=self.num_users)
        return self.config.similar_items_scale * items

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        fused = self._fused()
        users, items = fused.split([self.num_users, self.num_items])
        if self.training and self.config.item_dropout:
            items = self._drop_items(items)
        return users, items

    def _drop_items(self, items: torch.Tensor) -> torch.Tensor:
        """(I, D') item representations, a random ``item_dropout`` of them
        replaced by what they would be without any interaction."""
        chosen = (
            torch.rand(self.num_items, device=self.device) < self.config.item_dropout
        )
        rows = chosen.nonzero().squeeze(1)
        if not len(rows):
            return items
        features = {name: b.features[rows] for name, b in self.branches.items()}
        neighbours = self.item_neighbours[rows] if self.config.similar_items else None
        isolated = sum(self._isolated_item_parts(features, neighbours).values())
        return items.index_copy(0, rows, isolated)

    def _features(self) -> dict[str, torch.Tensor]:
        """Modality name to the (I, F_m) features of every item."""
        return {name: branch.features for name, branch in self.branches.items()}

    def _with_content_terms(
        self,
        parts: dict[str, torch.Tensor],
        num_users: int,
        features: dict[str, torch.Tensor],
        new_users: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Parts with the content terms' columns, if ``content_bias`` or
        ``content_factors`` is set.

        Modality m has a block of C = [bias] + K columns. In part m, its
        ``num_users`` user rows hold [1, theta_u^m] and the item rows after them
        [w_m . f_i^m, E_m f_i^m]; every other block, and every other part, holds
        0. The inner product of a user with an item then gains the content
        terms, and the parts still sum to the representations. New users take
        the mean trained user factor.

        Shapes:
            parts: name to (n, D''), users first; features: name to
            (n - num_users, F_m); returns name to (n, D'' + M * C).
        """
        config = self.config
        if not (config.content_bias or config.content_factors):
            return parts
        blocks = {
            name: self._content_block(name, num_users, features[name], new_users)
            for name in self.branches
        }
        out = {}
        for key, part in parts.items():
            laid = [
                block if name == key else block.new_zeros(block.shape)
                for name, block in blocks.items()
            ]
            out[key] = torch.cat([part, *laid], 1)
        return out

    def _content_block(
        self, name: str, num_users: int, features: torch.Tensor, new_users: bool
    ) -> torch.Tensor:
        """(num_users + I', C) content-term columns of modality ``name``."""
        columns = []
        if self.config.content_bias:
            ones = features.new_ones(num_users, 1)
            columns.append(torch.cat([ones, self.content_bias[name](features)]))
        if self.config.content_factors:
            theta = self.content_users[name]
            if new_users:
                theta = theta.mean(0).expand(num_users, -1)
            columns.append(torch.cat([theta, self.content_items[name](features)]))
        return torch.cat(columns, 1)

    def _side_by_side(
        self, parts: dict[str, torch.Tensor], collaborative: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Modality parts and the collaborative part in one column layout.

        Without ``id_layers`` the parts come back unchanged. With it, each
        modality part becomes ``[s * part, 0]`` and an ``"id"`` part
        ``[0, collaborative]`` joins them, so the parts still sum to the
        representation ``[s * sum of modality parts, collaborative]``.

        Shapes:
            parts: name to (n, D'); collaborative: (n, D); returns (n, D' + D).
        """
        if collaborative is None:
            return parts
        scale = self.config.modality_scale
        first = next(iter(parts.values()))
        zeros_right = collaborative.new_zeros(len(first), collaborative.shape[1])
        laid = {m: torch.cat([scale * p, zeros_right], 1) for m, p in parts.items()}
        laid["id"] = torch.cat([first.new_zeros(first.shape), collaborative], 1)
        return laid

    def parameter_groups(self, lr: float) -> list[dict]:
        """The content parameters (modality branches and content terms) at
        ``lr * modality_lr_scale``, the ID embeddings and the rest at ``lr``."""
        content = list(self.branches.parameters())
        for name in ("content_bias", "content_users", "content_items"):
            if hasattr(self, name):
                content += list(getattr(self, name).parameters())
        content_ids = {id(p) for p in content}
        rest = [p for p in self.parameters() if id(p) not in content_ids]
        scaled = lr * self.config.modality_lr_scale
        return [{"params": rest, "lr": lr}, {"params": content, "lr": scaled}]

    def regularized(self, users, pos, neg) -> list[TableRows]:
        offset = self.num_users
        nodes = torch.cat([users, pos + offset, neg + offset])
        prefs = [(branch.preference, users) for branch in self.branches.values()]
        if self.config.content_factors:
            prefs += [(theta, users) for theta in self.content_users.values()]
        return [(self.id_embedding, nodes), *prefs]

    # Explanation and cold start (see ``Recommender``). A new node runs through
    # the trained layers on a small graph of its own, so no parameter changes.

    @torch.no_grad()
    def attribution(self) -> Attribution:
        """Each modality's weighted part and its first layer's attention.

        The parts are ``w_m r_m`` of the fusion r = sum_m w_m r_m, so they sum
        to the representations; the edge weights and gates are layer 1's
        ``AttentionTrace`` of each modality.
        """
        with self.evaluating():
            laid, traces = self._laid_parts(with_traces=True)
        split = self.num_users
        parts = {name: (rep[:split], rep[split:]) for name, rep in laid.items()}
        first = {name: layer_traces[0] for name, layer_traces in traces.items()}
        return Attribution(
            parts,
            {name: trace.weight for name, trace in first.items()},
            {name: trace.gate for name, trace in first.items()},
        )

    @torch.no_grad()
    def new_item_parts(self, features: dict) -> dict[str, torch.Tensor]:
        """Modality parts of items absent from training, from features alone.

        A new item is an isolated node: it has no neighbours, so each layer's
        message is the normalised layer bias alone, and its ID embedding is the
        mean of the trained items' ID embeddings (the collaborative signal of an
        average item: it adds the same term to every new item's score for a
        user, so new items rank among themselves by content alone).

        Args:
            features: modality name to (I', F_m) features; every modality of the
                model, with the widths it was trained on.

        Returns:
            Modality name to (I', D') weighted part.
        """
        inputs = self._new_item_features(features)
        with self.evaluating():
            return self._isolated_item_parts(inputs)

    def _isolated_item_parts(
        self,
        features: dict[str, torch.Tensor],
        neighbours: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Parts of items without neighbours (see ``new_item_parts``).

        ``neighbours`` are their most similar training items (``similar_items``;
        None: found from ``features``).

        Shapes:
            features: modality name to (n, F_m); returns name to (n, D').
        """
        count = len(next(iter(features.values())))
        empty = np.empty((0, 2), dtype=np.int64)
        graph = Graph.from_interactions(empty, 0, count).to(self.device)
        id_rows = self._seen_item_mean().expand(count, -1)

        parts = {}
        weights = self.modality_weights()
        for (name, branch), w in zip(self.branches.items(), weights, strict=True):
            x = branch.item_inputs(features[name])
            parts[name] = w * self._propagate(branch, graph, x, id_rows)
        # An isolated node's propagated ID embedding is e^(0) / (K + 1).
        collaborative = id_rows / (self.config.id_layers + 1)
        laid = self._side_by_side(
            parts, collaborative if self.config.id_layers else None
        )
        if self.config.similar_items:
            if neighbours is None:
                neighbours = self._neighbours_of(features)
            laid = self._with_similar_items(laid, 0, neighbours, self.node_ids())
        return self._with_content_terms(laid, 0, features)

    @torch.no_grad()
    def fold_in_parts(self, item_lists) -> dict[str, torch.Tensor]:
        """Modality parts of new users computed from the items they chose.

        Each new user joins a small graph with edges to its items only and runs
        through every layer with attention over those items. Its first-layer
        input is the mean of the items' projected features (the user has no
        trained preference vector) and its ID embedding the mean of the trained
        users'. The items keep the states the full training graph gives them
        (the new user does not change them); their degree counts the new edge.

        Args:
            item_lists: B sequences of training item indices, one per new user.

        Returns:
            Modality name to (B, D') weighted part.
        """
        check_item_lists(item_lists, self.num_items)
        graph, items, pairs = self._fold_in_graph(item_lists)
        count = len(item_lists)
        item_nodes = items + self.num_users
        user_id = self.id_embedding[: self.num_users].mean(0).expand(count, -1)
        id_rows = torch.cat([user_id, self.id_embedding[item_nodes]])

        parts = {}
        with self.evaluating():
            weights = self.modality_weights()
            for (name, branch), w in zip(self.branches.items(), weights, strict=True):
                item_x = branch.item_inputs(branch.features[items])
                # Layers normalise their input: the sum points where the mean does.
                start = torch.zeros(count, item_x.shape[1], device=self.device)
                start.index_add_(0, pairs[:, 0], item_x[pairs[:, 1]])
                later = self._item_states(branch, item_nodes)
                x = torch.cat([start, item_x])
                rep = self._propagate(branch, graph, x, id_rows, later)
                parts[name] = w * rep[:count]
        no_items = {name: b.features[:0] for name, b in self.branches.items()}
        if not self.config.id_layers:
            return self._with_content_terms(parts, count, no_items, new_users=True)
        # The collaborative part of a new user: the mean of its items' parts.
        item_part = self.collaborative()[item_nodes]
        total = torch.zeros(count, item_part.shape[1], device=self.device)
        total.index_add_(0, pairs[:, 0], item_part[pairs[:, 1]])
        sizes = torch.bincount(pairs[:, 0], minlength=count).clamp(min=1)
        laid = self._side_by_side(parts, total / sizes.unsqueeze(1))
        if self.config.similar_items:
            none = torch.zeros(0, 1, dtype=torch.long, device=self.device)
            laid = self._with_similar_items(laid, count, none, self.node_ids())
        return self._with_content_terms(laid, count, no_items, new_users=True)

    def _propagate(
        self,
        branch: ModalityBranch,
        graph: Graph,
        x: torch.Tensor,
        id_rows: torch.Tensor,
        item_inputs: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Run a branch's layers on a small graph of new nodes.

        Args:
            x: (n, D_m) first-layer inputs of the graph's nodes.
            id_rows: (n, D) their ID embeddings.
            item_inputs: for each layer after the first, the inputs of the
                graph's item nodes, fixed from the training graph; None: every
                node carries its own output into the next layer.

        Shapes:
            returns (n, L * D) or (n, D), combined as ``layer_combine`` says.
        """
        outputs = []
        for number, layer in enumerate(branch.layers):
            if number and item_inputs is not None:
                x = torch.cat([x[: graph.num_users], item_inputs[number - 1]])
            x, _ = layer(graph, row_normalize(x), id_rows)
            outputs.append(x)
        if self.config.layer_combine == "concat":
            return torch.cat(outputs, dim=-1)
        return torch.stack(outputs).sum(0)

    def _item_states(
        self, branch: ModalityBranch, item_nodes: torch.Tensor
    ) -> list[torch.Tensor]:
        """Inputs of layers 2..L at the given item nodes, on the training graph."""
        x = torch.cat([branch.preference, branch.item_inputs(branch.features)])
        states, ids = [], self.node_ids()
        for layer in branch.layers[:-1]:
            x, _ = layer(self.graph, row_normalize(x), ids)
            states.append(x[item_nodes])
        return states

    def _fold_in_graph(self, item_lists) -> tuple[Graph, torch.Tensor, torch.Tensor]:
        """A graph of B new users and their items: (graph, items, pairs).

        ``items`` (I'',) are the chosen items' indices, and ``pairs`` (P, 2) the
        (new user, position in ``items``) edges. Degrees are those the nodes
        would have in the training graph with the new users added, so
        degree-scaled gates see the real neighbourhoods.
        """
        lengths = [len(items) for items in item_lists]
        users = np.repeat(np.arange(len(item_lists)), lengths)
        chosen = np.concatenate([np.asarray(items) for items in item_lists])
        items, local = np.unique(chosen, return_inverse=True)
        pairs = np.unique(np.stack([users, local.reshape(-1)], 1), axis=0)
        graph = Graph.from_interactions(pairs, len(item_lists), len(items))

        trained = self.graph.degree[torch.as_tensor(items) + self.num_users].cpu()
        degree = graph.degree.clone()
        degree[len(item_lists) :] += trained
        graph = dataclasses.replace(graph, degree=degree).to(self.device)
        device = self.device
        return (
            graph,
            torch.as_tensor(items, device=device),
            torch.as_tensor(pairs, device=device),
        )

    def _new_item_features(self, features: dict) -> dict[str, torch.Tensor]:
        """Check new items' features against the model; float32 tensors."""
        expected, found = sorted(self.branches), sorted(features)
        if expected != found:
            raise DataError(
                f"new item features: expected the modalities {expected}, found "
                f"{found}. Give one (I', F_m) array per modality the model was "
                "trained on."
            )
        tensors, counts = {}, set()
        for name, branch in self.branches.items():
            array = torch.as_tensor(np.asarray(features[name], dtype=np.float32))
            width = branch.project.in_features
            if array.ndim != 2 or array.shape[1] != width or len(array) == 0:
                raise DataError(
                    f"new item features {name!r}: expected a non-empty (I', "
                    f"{width}) array, found shape {tuple(array.shape)}."
                )
            if not torch.isfinite(array).all():
                raise DataError(
                    f"new item features {name!r}: found NaN or infinite values; "
                    "replace them (e.g. with zeros) before scoring."
                )
            tensors[name] = array.to(self.device)
            counts.add(len(array))
        if len(counts) > 1:
            raise DataError(
                "new item features: every modality must have one row per new "
                f"item, found row counts {sorted(counts)}."
            )
        return tensors
