"""``mgat benchmark``: per-seed training processes, the tables, plots and failures.

The dataset is tiny and has cold items (items 30..33 appear only in the test
split), so every output, cold_items.md included, has something to show.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from mgat import benchmark
from mgat.benchmark import BenchmarkConfig, result_columns, run_benchmark
from mgat.cli import main
from mgat.data import Dataset
from mgat.errors import ConfigError

NUM_USERS, WARM_ITEMS, COLD_ITEMS = 24, 30, 4
TINY = ["embed_dim=8", "latent_dim=8", "latent_dims=", "batch_size=256", "threads=1"]


def make_dataset(seed: int = 0) -> Dataset:
    """Two taste clusters; each user has 6 train, 2 valid and 2 test items."""
    rng = np.random.default_rng(seed)
    num_items = WARM_ITEMS + COLD_ITEMS
    item_cluster = np.arange(num_items) % 2
    splits = {"train": [], "valid": [], "test": []}
    for user in range(NUM_USERS):
        own = np.flatnonzero(item_cluster[:WARM_ITEMS] == user % 2)
        items = rng.permutation(own)
        splits["train"] += [(user, int(i)) for i in items[:6]]
        splits["valid"] += [(user, int(i)) for i in items[6:8]]
        splits["test"] += [(user, int(i)) for i in items[8:9]]
        cold = WARM_ITEMS + rng.choice(
            np.flatnonzero(item_cluster[WARM_ITEMS:] == user % 2)
        )
        splits["test"].append((user, int(cold)))

    centres = rng.normal(size=(2, 6))
    visual = centres[item_cluster] + 0.3 * rng.normal(size=(num_items, 6))
    return Dataset(
        "tiny",
        [f"u{u}" for u in range(NUM_USERS)],
        [f"i{i}" for i in range(num_items)],
        {split: np.array(pairs) for split, pairs in splits.items()},
        {"visual": visual.astype(np.float32)},
    )


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    return make_dataset().save(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def bench_dir(dataset_dir, tmp_path_factory) -> Path:
    """2 models x 2 seeds, two runs at a time; bprmf's seed 1 crashes."""
    out = tmp_path_factory.mktemp("benchmark")
    args = ["benchmark", "--dataset", str(dataset_dir), "--models", "mgat,bprmf"]
    args += ["--seeds", "2", "--epochs", "3", "--budget", "60", "--out", str(out)]
    args += ["--jobs", "2"]
    real_command = benchmark.train_command

    def crash_one(config, model, seed, *rest):
        if (model, seed) == ("bprmf", 1):
            return [sys.executable, "-c", "raise SystemExit('out of memory')"]
        return real_command(config, model, seed, *rest)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(benchmark, "train_command", crash_one)
        assert main([*args, *TINY]) == 1  # some run failed
    return out


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_results_csv_has_one_row_per_model_with_the_documented_columns(bench_dir):
    with open(bench_dir / "results.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == result_columns()
    assert header[:4] == ["model", "seeds", "recall@10_mean", "recall@10_std"]
    assert header[-4:] == ["best_epoch_mean", "epoch_s", "train_s", "peak_rss_mb"]
    assert len(header) == 2 + 3 * 3 * 2 + 4

    rows = read_rows(bench_dir / "results.csv")
    assert [(row["model"], row["seeds"]) for row in rows] == [
        ("mgat", "2"),
        ("bprmf", "1"),
    ]
    assert float(rows[0]["recall@20_std"]) >= 0.0
    assert rows[1]["recall@20_std"] == ""  # no spread from a single seed
    for row in rows:
        assert 0.0 <= float(row["recall@20_mean"]) <= 1.0
        assert 1.0 <= float(row["best_epoch_mean"]) <= 3.0
        assert 0.0 < float(row["epoch_s"]) <= float(row["train_s"])
        # A fresh Python process with torch imported takes well over 50 MiB.
        assert float(row["peak_rss_mb"]) > 50


def test_each_seed_is_a_run_directory_with_its_own_seed(bench_dir):
    for model, seed in (("mgat", 0), ("mgat", 1), ("bprmf", 0)):
        run = bench_dir / "runs" / model / f"seed{seed}"
        assert (run / "metrics.json").exists()
        assert (run / "model" / "model.json").exists()
        assert f'"seed": {seed}' in (run / "config.json").read_text()
        assert (run.parent / f"seed{seed}.log").exists()


def test_markdown_lists_models_and_how_it_was_run(bench_dir):
    text = (bench_dir / "results.md").read_text()
    assert "| mgat | 2 |" in text and "| bprmf | 1 |" in text
    assert " ± " in text
    assert "mgat benchmark --dataset" in text and "seeds 0-1" in text
    assert "60 s of training per run" in text and "CPU cores" in text
    assert "--jobs 2" in text and "(2 at a time" in text
    # Published figures belong to the TikTok split only.
    assert "published" not in text


def test_curves_and_cold_items_are_written(bench_dir):
    assert (bench_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = (bench_dir / "cold_items.md").read_text()
    assert f"{COLD_ITEMS} items have no training interaction" in text
    assert f"{NUM_USERS} interactions with them, from {NUM_USERS} users" in text
    assert text.count("| mgat | 2 |") == 2 and text.count("| bprmf | 1 |") == 2
    every, _, cold_only = text.partition("## Only the cold items ranked")
    assert "## Every item ranked" in every
    assert f"candidates are the {COLD_ITEMS} cold items" in cold_only


def test_a_crashed_run_is_reported_and_the_others_are_kept(bench_dir):
    log = bench_dir / "runs" / "bprmf" / "seed1.log"
    assert "out of memory" in log.read_text()
    assert not (log.parent / "seed1").exists()
    assert (
        f"bprmf seed 1 failed (exit status 1): see {log}"
        in (bench_dir / "results.md").read_text()
    )


def test_published_rows_for_tiktok(tmp_path):
    config = BenchmarkConfig(dataset="tiktok", models=("lightgcn",), seeds=1)
    row = {"model": "lightgcn", "seeds": 1, "best_epoch_mean": 5.0}
    row |= {"epoch_s": 1.0, "train_s": 9.0, "peak_rss_mb": 300.0}
    row |= {column: 0.05 for column in result_columns()[2:-4]}
    result = benchmark.BenchmarkResult(config, tmp_path, "tiktok", [], [], [row])

    benchmark.write_markdown(result, tmp_path / "results.md")
    text = (tmp_path / "results.md").read_text()
    assert "| lightgcn (published) | - | - | 0.0653 | - |" in text
    assert "| mmgcn (published) |" in text and "DiffMM" in text


def test_options_are_checked_before_anything_trains(dataset_dir, tmp_path):
    def attempt(**options):
        config = BenchmarkConfig(
            dataset=str(dataset_dir), models=("mgat", "bprmf"), options=options
        )
        run_benchmark(config, tmp_path / "never")

    with pytest.raises(ConfigError, match="unknown option.*num_layer"):
        attempt(num_layer="2")
    with pytest.raises(ConfigError, match="expected int"):
        attempt(embed_dim="wide")
    with pytest.raises(ConfigError, match="--seeds"):
        attempt(seed="3")
    with pytest.raises(ConfigError, match="unknown model 'gat'"):
        run_benchmark(BenchmarkConfig(models=("gat",)), tmp_path / "never")
    assert not (tmp_path / "never" / "runs").exists()
