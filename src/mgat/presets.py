"""Named configurations: model options and training options that go together.

``default`` is what ``mgat train --model NAME`` uses without ``--preset``; it is
the best configuration measured on the bundled TikTok set's validation split
(docs/benchmarks/). MGAT also has ``released``, the published code's behaviour,
and ``paper``, the paper's high-order propagation.
"""

from __future__ import annotations

from mgat.errors import ConfigError

Preset = dict[str, dict]

PRESETS: dict[str, dict[str, Preset]] = {
    "mgat": {
        # The published code: one layer, inner-product gate inside the softmax
        # scaled by the neighbour's degree, mean fusion, widths 256/128/100, D = 64,
        # Xavier-normal fusion maps. Its README trains with lr 3e-5 and weight
        # decay 0.1, which barely moves in a few dozen epochs; lr 1e-3 with weight
        # decay 1e-4 is used here instead, for 55 epochs with the best validation
        # epoch kept (no early stop: the best epoch ranges from 12 to 49).
        "released": {
            "model": {
                "embed_dim": 64,
                "num_layers": 1,
                "gate": "inner",
                "gate_placement": "softmax",
                "gate_degree": "neighbour",
                "layer_combine": "concat",
                "modality_fusion": "mean",
                "fusion_init": "xavier",
            },
            "train": {
                "lr": 1e-3,
                "weight_decay": 1e-4,
                "reg_weight": 0.0,
                "epochs": 55,
                "patience": 55,
            },
        },
        # High-order propagation as the paper describes it: three layers, the
        # gate multiplying the attention weight and scaled by the target's degree.
        # Training values: the best pure-MGAT setting measured on TikTok's
        # validation split (lr 3e-4, batch 4096, L2 1e-3; higher rates overfit
        # within two or three epochs).
        "paper": {
            "model": {
                "embed_dim": 64,
                "num_layers": 3,
                "latent_dim": 64,
                "latent_dims": {},
                "gate": "inner",
                "gate_placement": "multiply",
                "gate_degree": "target",
                "layer_combine": "concat",
            },
            "train": {
                "lr": 3e-4,
                "batch_size": 4096,
                "weight_decay": 0.0,
                "reg_weight": 1e-3,
            },
        },
        # The best configuration measured on TikTok's validation split: one gated
        # attention layer per modality beside four hops of linear ID propagation
        # (docs/mgat.md). The IDs train at LightGCN's best rate, depth, batch and
        # initial scale; the branches at 3e-4, the best rate of MGAT alone
        # (faster ones overfit), weighted by 0.05 in the representation.
        # Seed-0 validation Recall@20 / NDCG@20 by that weight: 0.2 .0941 / .0408,
        # 0.1 .0977 / .0448, 0.05 .0993 / .0452, 0.03 .1010 / .0440. Each item
        # also takes 4 x the mean ID of its 20 most content-similar items
        # (similar_items; seed-0 validation in docs/mgat.md: .1098 / .0456).
        "default": {
            "model": {
                "embed_dim": 64,
                "num_layers": 1,
                "latent_dim": 64,
                "latent_dims": {},
                "id_layers": 4,
                "id_init_std": 0.1,
                "modality_scale": 0.05,
                "modality_lr_scale": 0.06,
                "similar_items": 20,
                "similar_items_scale": 4.0,
            },
            "train": {
                "lr": 5e-3,
                "batch_size": 2048,
                "weight_decay": 0.0,
                "reg_weight": 1e-4,
                "patience": 10,
            },
        },
    },
    # Baselines. Learning rate, L2 weight and LightGCN's depth were chosen on
    # TikTok's validation split only (single seed-0 runs with early stopping,
    # capped at 150 s of one CPU thread each); the widths are the models' own.
    # Validation Recall@20 / NDCG@20 reached: LightGCN .0964 / .0457,
    # MMGCN .0918 / .0453 (its paper preset: .0898 / .0338), VBPR .0498 / .0185,
    # BPR-MF .0298 / .0120. Ranking by training popularity alone: .0626 / .0273.
    "lightgcn": {
        "default": {
            "model": {"embed_dim": 64, "num_layers": 4},
            "train": {
                "lr": 5e-3,
                "reg_weight": 1e-4,
                "weight_decay": 0.0,
                "batch_size": 2048,
            },
        },
    },
    "mmgcn": {
        # Symmetric-normalised aggregation (a GCN's 1 / sqrt(d_h d_t) weights)
        # instead of the paper's mean. Seed 0-2 validation Recall@20 / NDCG@20:
        # .0918 / .0453, .0908 / .0353, .0914 / .0337, against the mean's
        # .0898 / .0338, .0675, .0892. It first stays near the popularity
        # ranking for 10-20 epochs, hence a patience of 30 evaluations.
        "default": {
            "model": {
                "embed_dim": 64,
                "latent_dim": 64,
                "num_layers": 2,
                "aggregation": "symmetric",
                "combination": "concat",
                "modality_fusion": "sum",
            },
            "train": {
                "lr": 1e-4,
                "reg_weight": 1e-4,
                "weight_decay": 0.0,
                "batch_size": 2048,
                "patience": 30,
            },
        },
        # The paper's mean aggregation. At every rate tried (5e-5 to 1e-3)
        # validation peaks within a few epochs, then settles near the popularity
        # ranking (.063); faster rates peak lower.
        "paper": {
            "model": {
                "embed_dim": 64,
                "latent_dim": 64,
                "num_layers": 2,
                "aggregation": "mean",
                "combination": "concat",
                "modality_fusion": "sum",
            },
            "train": {
                "lr": 1e-4,
                "reg_weight": 1e-4,
                "weight_decay": 0.0,
                "batch_size": 2048,
            },
        },
    },
    "vbpr": {
        # VBPR validates best after one or two epochs of many small steps, then
        # overfits; larger batches reach less before they overfit. Seed-0
        # validation Recall@20 by batch (lr 3e-3, L2 3e-3): 64 .0505, 128 .0498,
        # 256 .0423, 512 .0400; at 2048 no rate or L2 weight tried (lr 1e-3 to
        # 3e-2, L2 0 to 0.1, initial scale 0.01 or 0.1) passed .036. 128 halves
        # the time of 64 for about the same.
        "default": {
            "model": {"embed_dim": 64, "content_dim": 64, "feature_scaling": "l2"},
            "train": {
                "lr": 3e-3,
                "reg_weight": 3e-3,
                "weight_decay": 0.0,
                "batch_size": 128,
            },
        },
    },
    "bprmf": {
        "default": {
            "model": {"embed_dim": 64},
            "train": {
                "lr": 1e-3,
                "reg_weight": 1e-3,
                "weight_decay": 0.0,
                "batch_size": 2048,
            },
        },
    },
}


def preset_names(model: str) -> list[str]:
    return sorted(PRESETS.get(model, {}))


def get_preset(model: str, name: str | None) -> Preset:
    """The preset ``name`` of ``model`` (None: its ``default``, if any)."""
    presets = PRESETS.get(model, {})
    if name is None:
        return presets.get("default", {"model": {}, "train": {}})
    if name not in presets:
        raise ConfigError(
            f"model {model!r} has no preset {name!r}; valid presets: "
            f"{', '.join(sorted(presets)) or 'none'}."
        )
    return presets[name]
