"""Runs: resolve a configuration, train, and write a run directory.

A run directory holds::

    config.json     the resolved configuration (model, dataset, model and training
                    options); ``mgat train --config`` accepts it
    model/          the best checkpoint as a saved model (see ``mgat.saved``)
    metrics.json    {"best_epoch": ..., "valid": {...}, "test": {...}}, keys
                    ``<metric>@<k>``
    history.csv     one row per epoch: loss, epoch seconds, validation metrics
    history.png     the loss and validation curves
    checkpoint/     the state after the last epoch, to continue an interrupted
                    run (see ``mgat.checkpoint`` and ``resume``)

This module is also the Python API: ``fit`` takes a dataset and options and
returns the trained model with its metrics; ``resume`` continues a run
directory. Inside a process group (torchrun, ``mgat train --nproc``) the
processes train together (``mgat.distributed``) and rank 0 writes the run.
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
from mgat import distributed
from mgat.bench import peak_rss_mb
from mgat.checkpoint import (
    CHECKPOINT_DIR,
    Checkpointer,
    latest_epoch,
    load_checkpoint,
    prepare_run_directory,
    storage_errors,
    write_atomically,
)
from mgat.data import Dataset
from mgat.errors import CheckpointError, ConfigError, DivergedError
from mgat.models import ModelData, Recommender, create_model, model_class
from mgat.presets import get_preset
from mgat.saved import load_model, save_model
from mgat.train import (
    EpochRecord,
    TrainConfig,
    Trainer,
    TrainResult,
    TrainState,
    resolve_device,
)

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
            What an earlier run wrote there is replaced; ``config.json`` is
            written first and a checkpoint after every epoch.
        config_file: a JSON config such as a run's ``config.json``.
        progress: a ``tqdm``-like factory for progress bars, or None.
        **options: model or training options, e.g. ``lr=1e-3, num_layers=2``.

    Raises:
        StorageError: when ``out`` cannot be written (permission, disk full).
        DivergedError: when the loss becomes NaN or infinite; the message
            names the last checkpoint to resume from.
    """
    data = dataset if isinstance(dataset, Dataset) else Dataset.load(dataset)
    run_config = resolve_config(
        model, data.source or data.name, preset, config_file, options
    )
    return train_run(run_config, data, out, progress)


def resume(directory: str | Path, progress=None, **options) -> Run:
    """Continue the run in ``directory`` from its last checkpoint.

    The run's ``config.json`` names the model, the dataset and every option.
    Without ``options`` the result on CPU is the one an uninterrupted run
    gives: the model, optimizer, epoch counters and every random state come
    back from the checkpoint. Without a checkpoint the run starts at epoch 1.

    Args:
        directory: a run directory written by ``fit`` or ``mgat train``.
        progress: a ``tqdm``-like factory for progress bars, or None.
        **options: training options to change, e.g. a lower ``lr`` after the
            loss diverged or more ``epochs``; the result then differs from an
            uninterrupted run. Model options are fixed by the saved weights.

    Raises:
        CheckpointError: when ``directory`` is not a run directory, or its
            checkpoint is corrupt or does not fit the run's configuration.
        ConfigError: for a model option in ``options``.
    """
    directory = Path(directory)
    run_config = _with_training_options(read_run_config(directory), options)
    data = Dataset.load(run_config.dataset)
    return train_run(run_config, data, directory, progress, resume=True)


def train_run(
    run_config: RunConfig,
    data: Dataset,
    out: str | Path | None = None,
    progress=None,
    resume: bool = False,
) -> Run:
    """Train the run that ``run_config`` describes; write ``out`` when given.

    With ``resume``, the state comes back from ``out``'s checkpoint first.
    """
    train_config = configuration.build(TrainConfig, run_config.train_config)
    if train_config.threads:
        torch.set_num_threads(train_config.threads)
    directory = Path(out) if out else None

    with distributed.process_group(train_config) as world:
        writes = directory is not None and (world is None or world.is_main)
        if writes:
            prepare_run_directory(directory, fresh=not resume)
            _write_json(directory / "config.json", dataclasses.asdict(run_config))
        trainer = _trainer(run_config, data, train_config, world, progress)
        if writes:
            trainer.on_epoch = _HistoryWriter(directory)
            trainer.on_checkpoint = Checkpointer(
                directory, train_config.checkpoint_minutes
            )
        state = _restore(trainer, directory) if resume else None
        result = _fit(trainer, state, directory)
        run = Run(trainer.model, data, run_config, result, directory)
        if writes:
            write_run(run)
    return run


def read_run_config(directory: str | Path) -> RunConfig:
    """The ``RunConfig`` stored in a run directory's ``config.json``."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{directory} is not a run directory: it has no config.json. Pass a "
            "directory written by `mgat train --out`."
        )
    stored = configuration.read_config_file(path)
    try:
        return RunConfig(**stored)
    except TypeError as err:
        raise CheckpointError(
            f"{path}: not a run configuration ({err}). Restore the file."
        ) from err


def _with_training_options(run_config: RunConfig, options: dict) -> RunConfig:
    if not options:
        return run_config
    train_fields = [f.name for f in dataclasses.fields(TrainConfig)]
    foreign = sorted(set(options) - set(train_fields))
    if foreign:
        raise ConfigError(
            f"a resumed run can change training options only; {', '.join(foreign)} "
            "is not one (model options are fixed by the checkpoint's weights). "
            f"Training options: {', '.join(train_fields)}."
        )
    logger.warning(
        "resuming with changed options %s: the result will differ from an "
        "uninterrupted run",
        options,
    )
    values = {**run_config.train_config, **options}
    train_config = configuration.build(TrainConfig, values)
    return dataclasses.replace(
        run_config, train_config=configuration.to_dict(train_config)
    )


def _trainer(run_config, data, train_config, world, progress) -> Trainer:
    """The model, built from the seed on this rank's device, and its trainer."""
    device = world.device if world else resolve_device(train_config.device)
    torch.manual_seed(train_config.seed)
    model_data = ModelData.from_dataset(data)
    net = create_model(run_config.model, model_data, run_config.model_config)
    net.to(device)
    logger.info(
        "training %s on %s (%d parameters) on %s",
        run_config.model, data.name, sum(p.numel() for p in net.parameters()),
        device if world is None else f"{world.size} processes ({device})",
    )  # fmt: skip
    if world is None:
        return Trainer(net, data, train_config, progress=progress)
    progress = progress if world.is_main else None
    return distributed.DistributedTrainer(
        net, data, train_config, world, progress=progress
    )


def _restore(trainer: Trainer, directory: Path) -> TrainState | None:
    state = load_checkpoint(directory / CHECKPOINT_DIR, trainer)
    if state is None:
        logger.warning(
            "%s has no checkpoint yet: training starts at epoch 1", directory
        )
        return None
    logger.info("resuming %s after epoch %d", directory, state.epoch)
    if trainer.on_epoch:
        for record in state.history:  # history.csv is rewritten from the start
            trainer.on_epoch(record)
    return state


def _fit(trainer: Trainer, state: TrainState | None, directory: Path | None):
    try:
        return trainer.fit(state)
    except DivergedError as err:
        raise DivergedError(f"{err} {_divergence_note(directory, trainer)}") from err


def _divergence_note(directory: Path | None, trainer: Trainer) -> str:
    if directory is None:
        return "Nothing was saved: pass out= (--out) to keep checkpoints."
    epoch = latest_epoch(directory)
    if epoch is None:
        return f"No checkpoint was written to {directory} before it diverged."
    lower = f"{trainer.config.lr / 10:g}"
    return (
        f"The last good checkpoint, after epoch {epoch}, is kept in "
        f"{directory / CHECKPOINT_DIR}; continue from it with a lower learning "
        f"rate: mgat train --resume {directory} lr={lower}"
    )


def write_run(run: Run) -> Path:
    """Write config, checkpoint, metrics, history and plot into the run directory.

    Raises:
        StorageError: when a file cannot be written; the run's checkpoint is
            kept, and ``resume`` writes the results again once that is fixed.
    """
    hint = (
        "The checkpoint is kept: fix this, then `mgat train --resume "
        f"{run.directory}` writes the results again."
    )
    with storage_errors(run.directory, "write the run's results", hint):
        return _write_run(run)


def _write_run(run: Run) -> Path:
    directory = run.directory
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / "config.json", dataclasses.asdict(run.config))
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
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "valid": run.result.valid,
        "test": run.result.test,
    }
    _write_json(directory / "metrics.json", metrics)
    plot_history(run.result.history, directory / "history.png")
    return directory


def _write_json(path: Path, value) -> None:
    with storage_errors(path.parent, f"write {path.name}"):
        write_atomically(path, (json.dumps(value, indent=2) + "\n").encode())


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
        hint = "The last checkpoint is intact; continue with `mgat train --resume`."
        with storage_errors(self.path, "append to the training history", hint):
            self._append(record)

    def _append(self, record: EpochRecord) -> None:
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
