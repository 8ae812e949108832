"""The training loop's options: mixed precision."""

import pytest

from mgat.config import build
from mgat.runs import fit
from mgat.train import TrainConfig


def test_precision_accepts_fp32_and_bf16_only():
    assert build(TrainConfig, {"precision": "bf16"}).precision == "bf16"
    with pytest.raises(
        ValueError,
        match="precision: 'fp16' is not a valid choice; expected one of fp32, bf16",
    ):
        build(TrainConfig, {"precision": "fp16"})


def test_bf16_training_learns_the_planted_clusters_as_fp32_does(
    clusters, tiny_mgat_options
):
    results = {
        precision: fit(
            clusters.dataset, "mgat", **tiny_mgat_options, precision=precision
        ).result
        for precision in ("fp32", "bf16")
    }
    exact, mixed = results["fp32"].test, results["bf16"].test
    assert exact["recall@10"] > 0.4  # chance: 10 of 32 unseen items, 0.31
    assert mixed["recall@10"] == pytest.approx(exact["recall@10"], abs=0.05)
    assert results["bf16"].history[-1].loss < results["bf16"].history[0].loss
