"""Why an item is recommended: each modality's share of the score, and evidence.

A model's ``attribution`` splits its representations into named parts that sum
to them: for MGAT, modality m's part is w_m r_m of the fusion r = sum_m w_m r_m
(one part, ``id``, for a model without modalities). With user parts u_m and item
parts i_m, u = sum_m u_m and i = sum_m i_m, the score is <u, i> and

    share_m = 1/2 (<u_m, i> + <u, i_m>)

Summed over m this is 1/2 (<u, i> + <u, i>) = <u, i>, so the shares add up to
the score exactly (up to float rounding; they are computed in float64). Each
share is the mean of the two one-sided splits ("what the user's modality-m
preference contributes" and "what the item's modality-m content contributes"),
so neither side is favoured; a share can be negative when a modality argues
against the item.

The evidence of a part is the user's training items that carried the most
weight into the user's node in that part's first attention layer: the
``AttentionTrace`` weight (gate included) of each edge user <- item. It is the
same for every item recommended to the user, and empty for models without
attention.

``mgat.recommend.explain`` and ``explain_new_user`` build explanations for a
user from a loaded model; this module holds the arithmetic and the results.

Shapes: U users, I items, D' representation width, E graph edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mgat.graph import Graph
from mgat.models.base import Attribution


@dataclass
class Evidence:
    """A past item of the user and the attention it carried in one modality.

    Attributes:
        item: item index (a training item of the user).
        weight: its first-layer attention weight into the user's node.
        gate: its gate value, where the model has gates (else None).
    """

    item: int
    weight: float
    gate: float | None = None


@dataclass
class Explanation:
    """The explanation of one (user, item) score.

    Attributes:
        item: item index.
        score: <u, i>, the score that is explained.
        shares: part name (modality or ``id``) to its share; they sum to
            ``score``.
        evidence: part name to the user's most attended training items, most
            weight first (no entry for a part without attention).
    """

    item: int
    score: float
    shares: dict[str, float]
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def summary(self, item_ids: np.ndarray | None = None) -> str:
        """One line: each part's share (and percent of the score), evidence.

        Args:
            item_ids: original item ids to print instead of indices.
        """
        name = (lambda i: str(item_ids[i])) if item_ids is not None else str
        total = sum(abs(v) for v in self.shares.values()) or 1.0
        shares = ", ".join(
            f"{part} {value:.3f} ({100 * abs(value) / total:.0f}%)"
            for part, value in self.shares.items()
        )
        attended = "; ".join(
            f"{part}: " + ", ".join(name(e.item) for e in items)
            for part, items in self.evidence.items()
            if items
        )
        return f"{shares}; attended {attended}" if attended else shares

    def to_dict(self, item_ids: np.ndarray) -> dict:
        """JSON-ready form with original item ids."""
        return {
            "item": str(item_ids[self.item]),
            "score": self.score,
            "shares": dict(self.shares),
            "evidence": {
                name: [
                    {"item": str(item_ids[e.item]), "weight": e.weight, "gate": e.gate}
                    for e in items
                ]
                for name, items in self.evidence.items()
            },
        }


def score_shares(
    user_parts: dict[str, torch.Tensor], item_parts: dict[str, torch.Tensor]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each part's share of the scores of one user for B items, and the scores.

    Shapes:
        user_parts: name to (D',); item_parts: name to (B, D'); returns name to
        (B,) float64 shares and (B,) float64 scores.
    """
    u_parts = {n: p.detach().double().cpu() for n, p in user_parts.items()}
    i_parts = {n: p.detach().double().cpu() for n, p in item_parts.items()}
    u = sum(u_parts.values())
    i = sum(i_parts.values())
    shares = {
        name: (0.5 * (i @ u_parts[name] + i_parts[name] @ u)).numpy()
        for name in u_parts
    }
    return shares, (i @ u).numpy()


def build_explanations(
    items: np.ndarray,
    user_parts: dict[str, torch.Tensor],
    item_parts: dict[str, torch.Tensor],
    evidence: dict[str, list[Evidence]],
) -> list[Explanation]:
    """One ``Explanation`` per item from the parts of one user and B items.

    Shapes:
        items: (B,); user_parts: name to (D',); item_parts: name to (B, D').
    """
    shares, scores = score_shares(user_parts, item_parts)
    return [
        Explanation(
            int(item),
            float(scores[row]),
            {name: float(values[row]) for name, values in shares.items()},
            evidence,
        )
        for row, item in enumerate(items)
    ]


def user_evidence(
    attribution: Attribution, graph: Graph, user: int, top: int
) -> dict[str, list[Evidence]]:
    """Per attention part, the user's ``top`` training items by edge weight."""
    start, end = int(graph.rowptr[user]), int(graph.rowptr[user + 1])
    # Edges are stored by target node: these are the user <- item edges.
    neighbours = graph.col[start:end].cpu().numpy() - graph.num_users
    evidence = {}
    for name, weights in attribution.edge_weight.items():
        weight = weights[start:end].detach().cpu().numpy()
        gates = attribution.edge_gate.get(name)
        gate = None if gates is None else gates[start:end].detach().cpu().numpy()
        order = np.argsort(-weight, kind="stable")[:top]
        evidence[name] = [
            Evidence(
                int(neighbours[e]),
                float(weight[e]),
                None if gate is None else float(gate[e]),
            )
            for e in order
        ]
    return evidence
