"""Hyperparameter search: grid or random trials, chosen on validation Recall@20.

A grid maps option names (a model's options or training options, as for
``mgat train``) to lists of values, e.g. ``{"lr": [1e-3, 1e-2], "num_layers":
[1, 2]}``. Grid search trains every combination; random search trains a number
of distinct combinations drawn uniformly. Every trial uses the same training
seed, so trials differ only in the searched options. The output directory
holds::

    trials.csv        one row per trial, written as trials finish: its options,
                      best epoch, seconds and validation metrics
    best_config.json  the chosen trial's configuration in the format of a run's
                      config.json, which ``mgat train --config`` accepts

Selection uses the validation split only; test metrics are neither recorded
nor compared here.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from mgat.data import Dataset
from mgat.errors import ConfigError, MgatError
from mgat.evaluation import FULL_METRICS
from mgat.runs import RunConfig, fit, resolve_config

logger = logging.getLogger(__name__)

SELECT_METRIC = "recall@20"
DEFAULT_RANDOM_TRIALS = 10


@dataclass
class TuneConfig:
    """A search: the model, the data, the grid and how to walk it.

    Args:
        model: a registered model name.
        dataset: a dataset directory or a built-in name.
        grid: option name to the list of values to try.
        search: ``grid`` (every combination, in order) or ``random``.
        trials: how many combinations random search draws (default 10, at most
            the grid's size); grid search takes none.
        seed: seeds the random draws and every trial's training.
        preset: the model's preset the trials start from (None: its default).
        epochs: maximum epochs per trial (None: the preset's).
        budget_s: training-time cap of each trial in seconds (None: no cap).
        options: fixed overrides applied to every trial, under the grid's.
    """

    model: str = "mgat"
    dataset: str = "tiktok"
    grid: dict[str, list] = field(default_factory=dict)
    search: Literal["grid", "random"] = "grid"
    trials: int | None = None
    seed: int = 0
    preset: str | None = None
    epochs: int | None = None
    budget_s: float | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_grid(self.grid, "grid")
        if self.search not in ("grid", "random"):
            raise ConfigError(f"search: expected grid or random, got {self.search!r}.")
        if self.search == "grid" and self.trials is not None:
            raise ConfigError(
                "trials: grid search trains every combination and takes no trial "
                "count. Use --search random --trials N to train a sample."
            )
        if self.trials is not None and self.trials < 1:
            raise ConfigError(f"trials: expected >= 1, got {self.trials}.")
        if self.budget_s is not None and self.budget_s <= 0:
            raise ConfigError(f"budget_s: expected > 0 seconds, got {self.budget_s}.")
        both = sorted(set(self.grid) & set(self.options))
        if both:
            raise ConfigError(
                f"option(s) {', '.join(both)} are both searched and fixed; keep "
                "each either in the grid or as option=value, not both."
            )


@dataclass
class Trial:
    """One trained combination; ``error`` is set instead of metrics on failure."""

    number: int
    options: dict[str, Any]
    config: RunConfig
    valid: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_by: str | None = None
    train_s: float | None = None
    error: str | None = None

    @property
    def score(self) -> float:
        return self.valid.get(SELECT_METRIC, -math.inf)


@dataclass
class TuneResult:
    """Every trial and the chosen one."""

    trials: list[Trial]
    best: Trial
    directory: Path


def read_grid(path: str | Path) -> dict[str, list]:
    """The grid of a JSON file: an object of option name to a list of values.

    Raises:
        ConfigError: the file is missing, not JSON, or not such an object.
    """
    path = Path(path)
    try:
        grid = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"grid file {path} does not exist.") from err
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"grid file {path} is not valid JSON ({err}); expected e.g. "
            '{"lr": [0.001, 0.01], "num_layers": [1, 2]}.'
        ) from err
    check_grid(grid, f"grid file {path}")
    return grid


def check_grid(grid: Any, where: str) -> None:
    """Raise ``ConfigError`` unless ``grid`` maps names to non-empty lists."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(
            f"{where}: expected a non-empty object of option name to a list of "
            f'values, e.g. {{"lr": [0.001, 0.01]}}; got {type(grid).__name__}.'
        )
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: option {name!r} has {values!r}; expected a non-empty "
                f"list of values. Fix: wrap a single value in a list, e.g. "
                f"[{json.dumps(values)}]."
            )


def candidates(config: TuneConfig) -> list[dict[str, Any]]:
    """The combinations to train: all of them, or a seeded random sample.

    Random search draws distinct combinations by index over the whole grid, so
    a large grid is never enumerated.
    """
    names = list(config.grid)
    sizes = [len(config.grid[name]) for name in names]
    total = math.prod(sizes)
    if config.search == "grid":
        product = itertools.product(*config.grid.values())
        return [dict(zip(names, values, strict=True)) for values in product]

    wanted = config.trials or DEFAULT_RANDOM_TRIALS
    if wanted > total:
        logger.warning(
            "%d trials asked but the grid has %d combinations: training all of them",
            wanted, total,
        )  # fmt: skip
        wanted = total
    picks = random.Random(config.seed).sample(range(total), wanted)
    return [_combination(config.grid, names, sizes, index) for index in picks]


def overrides(config: TuneConfig, options: dict[str, Any]) -> dict[str, Any]:
    """A trial's option overrides: seed and limits, fixed options, its own."""
    values: dict[str, Any] = {"seed": config.seed}
    if config.epochs is not None:
        values["epochs"] = config.epochs
    if config.budget_s is not None:
        values["budget_s"] = config.budget_s
    return {**values, **config.options, **options}


def run_tune(config: TuneConfig, out: str | Path) -> TuneResult:
    """Train every candidate, log and record each, and keep the best.

    Raises:
        ConfigError: an invalid grid, an unknown option or a value a model
            rejects, found before any training.
        MgatError: when every trial failed.
    """
    config.validate()
    chosen = candidates(config)
    configs = [
        resolve_config(
            config.model, config.dataset, config.preset, None, overrides(config, c)
        )
        for c in chosen
    ]
    dataset = Dataset.load(config.dataset)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    logger.info(
        "%s search over %s: %d trial(s) of %s on %s",
        config.search, ", ".join(config.grid), len(chosen), config.model, dataset.name,
    )  # fmt: skip

    log = _TrialLog(directory / "trials.csv", list(config.grid), configs[0])
    threads = torch.get_num_threads()  # a trial's threads option is process-wide
    try:
        trials = []
        for index, options in enumerate(chosen):
            trial = run_trial(config, dataset, index + 1, options, configs[index])
            _log_trial(trial, len(chosen))
            log.write(trial)
            trials.append(trial)
    finally:
        torch.set_num_threads(threads)

    best = select_best(trials)
    (directory / "best_config.json").write_text(
        json.dumps(dataclasses.asdict(best.config), indent=2) + "\n"
    )
    logger.info(
        "best: trial %d (%s), validation %s %.4f",
        best.number, _describe(best.options), SELECT_METRIC, best.score,
    )  # fmt: skip
    return TuneResult(trials, best, directory)


def run_trial(
    config: TuneConfig,
    dataset: Dataset,
    number: int,
    options: dict[str, Any],
    run_config: RunConfig,
) -> Trial:
    """Train one combination in this process; a training error fails the trial."""
    trial = Trial(number, options, run_config)
    values = overrides(config, options)
    try:
        run = fit(dataset, model=config.model, preset=config.preset, **values)
    except MgatError as err:
        trial.error = str(err)
        return trial

    result = run.result
    trial.valid = dict(result.valid)
    trial.best_epoch = result.best_epoch
    trial.stopped_by = result.stopped_by
    trial.train_s = result.train_s
    trial.config = run.config
    return trial


def select_best(trials: list[Trial]) -> Trial:
    """The trial with the highest validation Recall@20 (the first on a tie)."""
    finished = [trial for trial in trials if trial.error is None]
    if not finished:
        raise MgatError(
            f"all {len(trials)} trial(s) failed; the first error: "
            f"{trials[0].error}. Narrow the grid or lower the learning rate."
        )
    return max(finished, key=lambda trial: trial.score)


class _TrialLog:
    """trials.csv, one row appended per trial so a long search leaves a record."""

    def __init__(self, path: Path, names: list[str], first: RunConfig) -> None:
        ks = first.train_config.get("ks", (10, 20, 50))
        metrics = [f"valid_{m}@{k}" for m in FULL_METRICS for k in ks]
        self.path = path
        self.columns = [
            "trial", "status", *names, "best_epoch", "stopped_by", "train_s",
            *metrics,
        ]  # fmt: skip
        with open(path, "w", newline="") as handle:
            csv.DictWriter(handle, self.columns).writeheader()

    def write(self, trial: Trial) -> None:
        row = {
            "trial": trial.number,
            "status": "ok" if trial.error is None else f"failed: {trial.error}",
            **{k: _cell(v) for k, v in trial.options.items()},
            "best_epoch": trial.best_epoch,
            "stopped_by": trial.stopped_by,
            "train_s": None if trial.train_s is None else round(trial.train_s, 3),
            **{f"valid_{k}": round(v, 6) for k, v in trial.valid.items()},
        }
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(
                handle, self.columns, restval="", extrasaction="ignore"
            )
            writer.writerow(row)


def _combination(
    grid: dict[str, list], names: list[str], sizes: list[int], index: int
) -> dict[str, Any]:
    """The combination at ``index`` of the grid's product, read as mixed radix."""
    combination = {}
    for name, size in zip(reversed(names), reversed(sizes), strict=True):
        index, position = divmod(index, size)
        combination[name] = grid[name][position]
    return {name: combination[name] for name in names}


def _log_trial(trial: Trial, total: int) -> None:
    if trial.error is not None:
        logger.warning(
            "trial %d/%d (%s) failed: %s",
            trial.number, total, _describe(trial.options), trial.error,
        )  # fmt: skip
        return
    logger.info(
        "trial %d/%d (%s): validation %s %.4f at epoch %d, %.1f s (%s)",
        trial.number, total, _describe(trial.options), SELECT_METRIC, trial.score,
        trial.best_epoch, trial.train_s, trial.stopped_by,
    )  # fmt: skip


def _describe(options: dict[str, Any]) -> str:
    return " ".join(f"{k}={_cell(v)}" for k, v in options.items())


def _cell(value: Any) -> Any:
    """Scalars as they are; lists and mappings as JSON text."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value
