"""``mgat tune``: trials, selection on validation Recall@20, a reusable config."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mgat.cli import main
from mgat.errors import ConfigError
from mgat.tune import TuneConfig, candidates, read_grid, run_tune

GRID = {"lr": [0.001, 0.05], "num_layers": [1, 2]}
TINY = ["embed_dim=8", "latent_dim=8", "latent_dims=", "batch_size=128", "threads=1"]


@pytest.fixture(scope="module")
def dataset_dir(clusters, tmp_path_factory) -> Path:
    return clusters.dataset.save(tmp_path_factory.mktemp("data") / "clusters")


@pytest.fixture(scope="module")
def tune_dir(dataset_dir, tmp_path_factory) -> Path:
    """A grid search of 4 trials of a tiny MGAT through the command line."""
    out = tmp_path_factory.mktemp("tune")
    grid = out / "grid.json"
    grid.write_text(json.dumps(GRID))
    args = ["tune", "--model", "mgat", "--dataset", str(dataset_dir)]
    args += ["--grid", str(grid), "--epochs", "4", "--seed", "1", "--out", str(out)]
    assert main([*args, *TINY]) == 0
    return out


def read_trials(directory: Path) -> list[dict[str, str]]:
    with open(directory / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_combination_is_a_logged_trial(tune_dir):
    trials = read_trials(tune_dir)
    assert [(t["lr"], t["num_layers"]) for t in trials] == [
        ("0.001", "1"),
        ("0.001", "2"),
        ("0.05", "1"),
        ("0.05", "2"),
    ]
    assert all(t["status"] == "ok" for t in trials)
    assert {"valid_recall@20", "valid_ndcg@10", "best_epoch", "train_s"} <= set(
        trials[0]
    )
    assert not any(column.startswith("test") for column in trials[0])


def test_the_best_validation_recall_is_chosen(tune_dir):
    trials = read_trials(tune_dir)
    best = max(trials, key=lambda t: float(t["valid_recall@20"]))
    config = json.loads((tune_dir / "best_config.json").read_text())

    assert set(config) == {"model", "dataset", "preset", "model_config", "train_config"}
    assert config["train_config"]["lr"] == float(best["lr"])
    assert config["model_config"]["num_layers"] == int(best["num_layers"])
    # Fixed options and the seed are part of the configuration too.
    assert config["model_config"]["embed_dim"] == 8
    assert config["train_config"]["seed"] == 1
    assert config["train_config"]["epochs"] == 4


def test_best_config_trains_again_with_mgat_train(tune_dir, dataset_dir, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "mgat", "train", "--model", "mgat"]
    command += ["--dataset", str(dataset_dir), "--out", str(run)]
    command += ["--config", str(tune_dir / "best_config.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    tuned = json.loads((tune_dir / "best_config.json").read_text())
    trained = json.loads((run / "config.json").read_text())
    assert trained["model_config"] == tuned["model_config"]
    assert trained["train_config"] == tuned["train_config"]


def test_random_search_draws_distinct_combinations_by_seed():
    grid = {"lr": [0.001, 0.01, 0.1], "num_layers": [1, 2, 3], "gate": ["inner"]}
    config = TuneConfig(grid=grid, search="random", trials=5, seed=3)
    drawn = candidates(config)

    assert len(drawn) == 5
    assert len({tuple(c.values()) for c in drawn}) == 5
    assert all(c["lr"] in grid["lr"] and c["gate"] == "inner" for c in drawn)
    assert drawn == candidates(config)
    assert drawn != candidates(TuneConfig(grid=grid, search="random", trials=5))
    # More trials than combinations trains each combination once.
    assert len(candidates(TuneConfig(grid=grid, search="random", trials=50))) == 9


def test_grid_errors_say_what_to_do(tmp_path, dataset_dir):
    bad = tmp_path / "grid.json"
    bad.write_text('{"lr": 0.01}')
    with pytest.raises(ConfigError, match=r"wrap a single value in a list, e.g. \[0"):
        read_grid(bad)
    bad.write_text("lr: [0.01]")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_grid(bad)
    with pytest.raises(ConfigError, match="--search random --trials N"):
        run_tune(TuneConfig(grid=GRID, trials=2), tmp_path / "never")

    unknown = TuneConfig(dataset=str(dataset_dir), grid={"num_layer": [1]})
    with pytest.raises(ConfigError, match="unknown option 'num_layer'"):
        run_tune(unknown, tmp_path / "never")
    both = TuneConfig(grid=GRID, options={"lr": "0.1"})
    with pytest.raises(ConfigError, match="both searched and fixed"):
        run_tune(both, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_the_command_line_reports_a_bad_grid(tmp_path, capsys):
    assert main(["tune", "--grid", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
