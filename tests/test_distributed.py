"""Data-parallel training: 2 CPU processes on loopback against 1 process.

With N ranks of batch size B, each step covers N * B pairs drawn exactly as a
single process with batch size N * B draws them, so the two must follow the
same parameters up to the order of floating-point sums.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mgat.cli import main
from mgat.data import Dataset
from mgat.distributed import DistributedTrainer, launch, process_group
from mgat.errors import ConfigError
from mgat.models import ModelData, create_model
from mgat.runs import fit
from mgat.train import TrainConfig, Trainer

RANKS = 2
PER_RANK = 50  # 101 training pairs: a step of 100, then a step of one pair
TINY_MGAT = {"embed_dim": 8, "latent_dim": 8, "latent_dims": {}, "edge_dropout": 0.3}


def tiny_dataset() -> Dataset:
    """101 training pairs over 24 users and 18 items, two small modalities."""
    rng = np.random.default_rng(0)
    keys = rng.choice(24 * 18, size=101 + 2 * 24, replace=False)
    pairs = np.stack([keys // 18, keys % 18], axis=1)
    splits = {"train": pairs[:101], "valid": pairs[101:125], "test": pairs[125:]}
    features = {
        "visual": rng.normal(size=(18, 5)).astype(np.float32),
        "acoustic": rng.normal(size=(18, 3)).astype(np.float32),
    }
    return Dataset("tiny", np.arange(24), np.arange(18), splits, features)


def tiny_trainer(batch_size: int, world=None) -> Trainer:
    dataset = tiny_dataset()
    config = TrainConfig(batch_size=batch_size, lr=0.05, seed=0, threads=1)
    torch.manual_seed(0)
    model = create_model("mgat", ModelData.from_dataset(dataset), TINY_MGAT)
    if world is None:
        return Trainer(model, dataset, config)
    return DistributedTrainer(model, dataset, config, world)


def train_one_epoch(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Parameters after the first step and after the epoch, and the epoch loss."""
    after_step = []

    def progress(batches, **options):
        for batch in batches:
            yield batch  # the trainer steps before it asks for the next batch
            after_step.append(
                {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
            )

    trainer.progress = progress
    loss = trainer.train_epoch(1)
    first, last = after_step[0], after_step[-1]
    return {
        **{f"first.{n}": t for n, t in first.items()},
        **{f"last.{n}": t for n, t in last.items()},
        "loss": torch.tensor(loss, dtype=torch.float64),
    }


def rank_epoch(directory: Path) -> None:
    """One rank of the 2-process run: train an epoch, save what it reached."""
    config = TrainConfig(batch_size=PER_RANK, threads=1)
    with process_group(config) as world:
        trainer = tiny_trainer(PER_RANK, world)
        save_file(train_one_epoch(trainer), directory / f"rank{world.rank}.st")


def test_two_processes_step_like_one_process_on_the_combined_batch(tmp_path):
    launch(rank_epoch, RANKS, tmp_path)
    single = train_one_epoch(tiny_trainer(RANKS * PER_RANK))

    initial = tiny_trainer(RANKS * PER_RANK).model.state_dict()
    assert not torch.equal(single["first.id_embedding"], initial["id_embedding"])
    for rank in range(RANKS):
        reached = load_file(tmp_path / f"rank{rank}.st")
        assert reached.keys() == single.keys()
        for name, tensor in single.items():
            torch.testing.assert_close(reached[name], tensor, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def dataset_dir(clusters, tmp_path_factory) -> Path:
    return clusters.dataset.save(tmp_path_factory.mktemp("data") / "clusters")


TRAINING = ["--epochs", "6", "lr=0.02", "threads=1", "patience=100"]
TRAINING += ["embed_dim=16", "latent_dim=16", "latent_dims="]


def test_a_two_process_run_matches_one_process(dataset_dir, tmp_path):
    out = tmp_path / "two"
    command = [sys.executable, "-m", "mgat", "-q", "train", "--nproc", str(RANKS)]
    command += ["--dataset", str(dataset_dir), "--out", str(out), *TRAINING]
    done = subprocess.run(
        [*command, "batch_size=32"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "run written to" in done.stdout
    two = json.loads((out / "metrics.json").read_text())["valid"]["ndcg@10"]

    options = dict(o.split("=") for o in TRAINING[2:])
    options["latent_dims"] = {}
    same_pairs = fit(str(dataset_dir), epochs=6, batch_size=64, **options)
    same_batch = fit(str(dataset_dir), epochs=6, batch_size=32, **options)

    # The same pairs per step: equal up to floating-point order. The same
    # batch per process: twice the steps; seeds 0-2 spread NDCG@10 over
    # 0.44-0.48 there, so 0.05 is within training noise.
    assert two == pytest.approx(same_pairs.result.valid["ndcg@10"], abs=0.005)
    assert two == pytest.approx(same_batch.result.valid["ndcg@10"], abs=0.05)
    assert two > 0.3  # a random ranking of the 32 unseen items scores about 0.17


def test_a_single_process_joins_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group(TrainConfig()) as world:
        assert world is None


def test_a_partial_launcher_environment_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(name, raising=False)
    with (
        pytest.raises(ConfigError, match="MASTER_ADDR, MASTER_PORT, RANK"),
        process_group(TrainConfig()),
    ):
        pass


def test_nproc_under_a_launcher_is_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")  # a rank that does not check --out
    assert main(["train", "--nproc", "2", "--out", str(tmp_path / "run")]) == 2
    assert "already runs under a launcher" in capsys.readouterr().err
    assert os.environ["WORLD_SIZE"] == "2"
