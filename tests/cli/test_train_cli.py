"""``mgat train`` and ``mgat evaluate`` end to end, as separate processes."""

import json
import subprocess
import sys

import pytest

TINY = [
    "embed_dim=8",
    "latent_dim=8",
    "latent_dims=",
    "batch_size=64",
    "threads=1",
    "lr=0.01",
]


def mgat(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "mgat", "-q", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def trained(clusters, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    data = clusters.dataset.save(root / "data")
    run = root / "run"
    out = mgat(
        "train", "--dataset", str(data), "--out", str(run), "--epochs", "3",
        "--seed", "1", *TINY,
    )  # fmt: skip
    return data, run, out


def test_train_writes_the_run_directory(trained):
    _, run, out = trained
    for name in ("config.json", "metrics.json", "history.csv", "history.png"):
        assert (run / name).is_file(), name
    assert (run / "model" / "model.json").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("recall@20", "ndcg@20", "precision@10", "hit@50", "map@20"):
            assert 0.0 <= metrics[split][key] <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "mgat" and config["train_config"]["seed"] == 1
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3
    assert "recall" in out.stdout


def test_evaluate_reproduces_the_metrics(trained):
    _, run, _ = trained
    stored = json.loads((run / "metrics.json").read_text())["test"]
    result = mgat("evaluate", "--run", str(run), "--json")
    again = json.loads(result.stdout)
    for key, value in stored.items():
        assert round(again[key], 4) == round(value, 4), key


def test_sampled_protocol_reports_both_ndcg_variants(trained):
    _, run, _ = trained
    result = mgat("evaluate", "--run", str(run), "--protocol", "sampled", "--json")
    metrics = json.loads(result.stdout)
    assert {"recall@10", "ndcg@10", "ndcg_bypos@10"} <= set(metrics)


def test_existing_run_directory_and_unknown_options_are_refused(trained):
    data, run, _ = trained
    result = mgat("train", "--dataset", str(data), "--out", str(run), check=False)
    assert result.returncode == 2
    assert "--overwrite" in result.stderr

    result = mgat(
        "train", "--dataset", str(data), "--out", str(run.parent / "x"),
        "layers=3", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown option 'layers'" in result.stderr
    assert "num_layers" in result.stderr
