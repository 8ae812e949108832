"""``mgat bench``: the JSON report, and the ranking it times against brute force."""

import json
import math
import subprocess
import sys

import pytest
import torch

from mgat.bench import rank_all_users

TINY = ["embed_dim=8", "latent_dim=8", "latent_dims=", "batch_size=64"]
KEYS = {"train_epoch_s", "train_batch_s", "eval_full_s", "peak_rss_mb"}


def bench(*args):
    return subprocess.run(
        [sys.executable, "-m", "mgat", "-q", "bench", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def report(clusters, tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    data = clusters.dataset.save(root / "data")
    out = root / "bench.json"
    result = bench(
        "--dataset", str(data), "--threads", "1", "--epochs", "1",
        "--batches", "2", "--k", "5", "--out", str(out), *TINY,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return clusters.dataset, json.loads(out.read_text()), result.stdout


def test_report_has_the_timings_memory_and_versions(report):
    dataset, written, _ = report
    assert set(written) >= KEYS
    assert all(written[key] > 0 for key in KEYS)
    assert written["threads"] == 1 and written["device"] == "cpu"
    assert written["versions"]["torch"] == torch.__version__
    assert written["batches_per_epoch"] == math.ceil(len(dataset.train) / 64)
    # Even a tiny model holds torch itself in memory.
    assert written["peak_rss_mb"] > 50


def test_report_is_also_printed(report):
    _, written, stdout = report
    assert json.loads(stdout) == written


def test_an_unknown_device_is_refused_with_the_choices(clusters, tmp_path):
    data = clusters.dataset.save(tmp_path / "data")
    result = bench("--dataset", str(data), "--device", "tpu", *TINY)
    assert result.returncode != 0
    assert "tpu" in result.stderr and "cuda" in result.stderr


def test_ranking_matches_brute_force_with_training_items_masked(clusters, saved):
    model = saved.model
    dataset = clusters.dataset
    top = rank_all_users(model, dataset, k=5, chunk=7)  # chunks that split users

    users, items = model.embed()
    scores = users @ items.t()
    train = torch.as_tensor(dataset.matrix("train").toarray(), dtype=torch.bool)
    scores[train] = float("-inf")
    expected = torch.topk(scores, 5, dim=1).values
    got = scores.gather(1, top)
    assert top.shape == (dataset.num_users, 5)
    assert not train.gather(1, top).any()
    torch.testing.assert_close(got, expected)
