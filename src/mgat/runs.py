"""Runs: resolve a configuration, train, and write a run directory.

A run directory holds::

    config.json     the resolved configuration (model, dataset, model and training
                    options); ``mgat train --config`` accepts it
    model/          the best checkpoint as a saved model (see ``mgat.saved``)
    metrics.json    {"best_epoch": ..., "valid": {...}, "test": {...}}, keys
                    ``<metric>@<k>``
    history.csv     one row per epoch: loss, epoch seconds, validation metrics
    history.png     the loss and validation curves

This module is also the Python API: ``fit`` takes a dataset and options and
returns the trained model with its metrics.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mgat import config as configuration
from mgat.data import Dataset
from mgat.errors import ConfigError
from mgat.models import ModelData, Recommender, create_model, model_class
from mgat.presets import get_preset
from mgat.saved import load_model, save_model
from mgat.train import EpochRecord, TrainConfig, Trainer, TrainResult, resolve_device

logger = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """Everything that defines a training run."""

    model: str
    dataset: str
    preset: str | None
    model_config: dict[str, Any]
    train_config: dict[str, Any]


@dataclass
class Run:
    """A trained model, its data, its configuration and its results."""

    model: Recommender
    dataset: Dataset
    config: RunConfig
    result: TrainResult
    directory: Path | None = None


def resolve_config(
    model: str,
    dataset: str,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Merge preset, config file and ``option=value`` overrides, in that order.

    Each override goes to the model's config or the training config, by name;
    a name in neither is rejected with both lists of valid options.
    """
    cls = model_class(model)
    chosen = get_preset(model, preset)
    model_values = dict(chosen.get("model", {}))
    train_values = dict(chosen.get("train", {}))
    if config_file:
        stored = configuration.read_config_file(config_file)
        if stored.get("model", model) != model:
            raise ConfigError(
                f"config file {config_file} is for model {stored['model']!r}, not "
                f"{model!r}. Pass --model {stored['model']} or another file."
            )
        model_values.update(stored.get("model_config", {}))
        train_values.update(stored.get("train_config", {}))
    model_fields = {f.name for f in dataclasses.fields(cls.config_class)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in (overrides or {}).items():
        if key in model_fields:
            model_values[key] = value
        elif key in train_fields:
            train_values[key] = value
        else:
            raise ConfigError(
                f"unknown option {key!r}. {model} options: "
                f"{', '.join(sorted(model_fields))}; training options: "
                f"{', '.join(sorted(train_fields))}."
            )
    model_config = configuration.build(cls.config_class, model_values)
    train_config = configuration.build(TrainConfig, train_values)
    return RunConfig(
        model,
        dataset,
        preset,
        configuration.to_dict(model_config),
        configuration.to_dict(train_config),
    )


def fit(
    dataset: Dataset | str,
    model: str = "mgat",
    preset: str | None = None,
    out: str | Path | None = None,
    config_file: str | Path | None = None,
    progress=None,
    **options,
) -> Run:
    """Train ``model`` on ``dataset`` and, with ``out``, write a run directory.

    Args:
        dataset: a ``Dataset``, a dataset directory or a built-in name.
        model: a registered model name (``mgat``, ``lightgcn``...).
        preset: a named configuration of the model (None: its default).
        out: the run directory to write, or None to keep everything in memory.
        config_file: a JSON config such as a run's ``config.json``.
        progress: a ``tqdm``-like factory for progress bars, or None.
        **options: model or training options, e.g. ``lr=1e-3, num_layers=2``.
    """
    data = dataset if isinstance(dataset, Dataset) else Dataset.load(dataset)
    run_config = resolve_config(
        model, data.source or data.name, preset, config_file, options
    )
    train_config = configuration.build(TrainConfig, run_config.train_config)
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    device = resolve_device(train_config.device)

    torch.manual_seed(train_config.seed)
    net = create_model(model, ModelData.from_dataset(data), run_config.model_config)
    net.to(device)
    logger.info(
        "training %s on %s (%d parameters) on %s",
        model, data.name, sum(p.numel() for p in net.parameters()), device,
    )  # fmt: skip

    directory = Path(out) if out else None
    history_writer = _HistoryWriter(directory) if directory else None
    trainer = Trainer(net, data, train_config, history_writer, progress)
    result = trainer.fit()
    run = Run(net, data, run_config, result, directory)
    if directory:
        write_run(run)
    return run


def write_run(run: Run) -> Path:
    """Write config, checkpoint, metrics, history and plot into the run directory."""
    directory = run.directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(
        json.dumps(dataclasses.asdict(run.config), indent=2) + "\n"
    )
    data = ModelData.from_dataset(run.dataset)
    save_model(
        directory / "model",
        run.model,
        data,
        run.dataset.user_ids,
        run.dataset.item_ids,
        extra={"dataset": run.dataset.name},
    )
    metrics = {
        "best_epoch": run.result.best_epoch,
        "stopped_by": run.result.stopped_by,
        "train_s": round(run.result.train_s, 3),
        "valid": run.result.valid,
        "test": run.result.test,
    }
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_history(run.result.history, directory / "history.png")
    return directory


def load_run(directory: str | Path, device: str = "cpu"):
    """The saved model and the ``RunConfig`` of a run directory."""
    directory = Path(directory)
    stored = configuration.read_config_file(directory / "config.json")
    saved = load_model(directory / "model", device)
    return saved, RunConfig(**stored)


class _HistoryWriter:
    """Appends each epoch to ``history.csv`` as training goes."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "history.csv"
        self.path.unlink(missing_ok=True)
        self.columns: list[str] | None = None

    def __call__(self, record: EpochRecord) -> None:
        row = {
            "epoch": record.epoch,
            "loss": round(record.loss, 6),
            "epoch_s": round(record.epoch_s, 4),
            "elapsed_s": round(record.elapsed_s, 3),
            **{f"valid_{k}": round(v, 6) for k, v in record.valid.items()},
        }
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.DictWriter(handle, self.columns).writeheader()
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.columns, restval="").writerow(
                {k: row.get(k, "") for k in self.columns}
            )


def plot_history(history: list[EpochRecord], path: Path) -> None:
    """Loss and validation Recall/NDCG@20 against epochs, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    evaluated = [r for r in history if r.valid]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(epochs, [r.loss for r in history], color="tab:blue")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    for key in ("recall@20", "ndcg@20"):
        if evaluated and key in evaluated[0].valid:
            right.plot(
                [r.epoch for r in evaluated],
                [r.valid[key] for r in evaluated],
                label=key,
            )
    right.set(xlabel="epoch", ylabel="validation", title="validation metrics")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
