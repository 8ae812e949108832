"""Benchmark: several models, each with its default preset, over several seeds.

Every (model, seed) pair trains in its own ``python -m mgat train`` process: the
peak memory measured is that model's alone, and a crash costs one run, not the
comparison. Test metrics are those of the best validation epoch. The output
directory holds::

    runs/<model>/seed<k>/      each run directory (see ``mgat.runs``)
    runs/<model>/seed<k>.log   that training process's output
    results.csv                one row per model: mean and std over seeds
    results.md                 the same as a table, with published figures
    curves.png                 validation Recall@20 against epochs and seconds
    cold_items.md              test metrics restricted to cold items

Cold items are the items without a training interaction; their test metrics are
recomputed from each run's saved best model.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mgat.data import Dataset
from mgat.errors import ConfigError, MgatError
from mgat.evaluation import cold_item_targets
from mgat.models import model_class
from mgat.runs import resolve_config
from mgat.saved import load_model
from mgat.train import TrainConfig, evaluate_model

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("mgat", "mmgcn", "lightgcn", "bprmf", "vbpr")
METRICS = ("recall", "ndcg", "precision")
KS = (10, 20, 50)
CURVE_METRIC = "recall@20"

PUBLISHED_SOURCE = "DiffMM (Jiang et al., ACM MM 2024), Table 1"
# Full-ranking test figures published on exactly the bundled split, by dataset
# name; a dataset without an entry shows no published rows.
PUBLISHED: dict[str, dict[str, dict[str, float]]] = {
    "tiktok": {
        "bprmf": {"recall@20": 0.0346, "precision@20": 0.0017, "ndcg@20": 0.0130},
        "vbpr": {"recall@20": 0.0380, "precision@20": 0.0018, "ndcg@20": 0.0134},
        "lightgcn": {"recall@20": 0.0653, "precision@20": 0.0033, "ndcg@20": 0.0282},
        "mmgcn": {"recall@20": 0.0730, "precision@20": 0.0036, "ndcg@20": 0.0307},
    },
}


@dataclass
class BenchmarkConfig:
    """What to compare and how.

    Args:
        dataset: a dataset directory or a built-in name. Defaults to ``tiktok``.
        models: registered model names, trained in this order.
        seeds: runs per model, with seeds ``0 .. seeds - 1``. Defaults to 3.
        epochs: maximum epochs per run (None: each preset's own).
        budget_s: training-time cap of each run in seconds (None: no cap).
        options: ``option=value`` overrides, as command-line strings, given to
            every model that has the option (a model or a training option).
        jobs: training processes run at once. More than one shortens the
            whole comparison on a machine with cores to spare, but the runs
            then share the CPU, which their times and speeds reflect.
    """

    dataset: str = "tiktok"
    models: tuple[str, ...] = DEFAULT_MODELS
    seeds: int = 3
    epochs: int | None = None
    budget_s: float | None = None
    options: dict[str, str] = field(default_factory=dict)
    jobs: int = 1

    def validate(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError(
                f"models: expected one or more distinct model names, got "
                f"{list(self.models)}."
            )
        for name in self.models:
            model_class(name)  # raises with the list of valid models
        if self.seeds < 1:
            raise ConfigError(f"seeds: expected >= 1, got {self.seeds}.")
        if self.jobs < 1:
            raise ConfigError(f"jobs: expected >= 1, got {self.jobs}.")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs: expected >= 1, got {self.epochs}.")
        if self.budget_s is not None and self.budget_s <= 0:
            raise ConfigError(f"budget_s: expected > 0 seconds, got {self.budget_s}.")
        if "seed" in self.options:
            raise ConfigError(
                "option seed: the benchmark sets each run's seed itself (0 .. "
                "seeds - 1). Drop seed= and use --seeds."
            )


@dataclass
class SeedRun:
    """One finished training run, read back from its run directory.

    Attributes:
        curve: (epoch, elapsed seconds, validation Recall@20) at each evaluation.
    """

    model: str
    seed: int
    directory: Path
    best_epoch: int
    test: dict[str, float]
    train_s: float
    epoch_s: float
    peak_rss_mb: float
    curve: list[tuple[int, float, float]]


@dataclass
class FailedRun:
    """A training process that exited with an error; its log says why."""

    model: str
    seed: int
    returncode: int
    log: Path


@dataclass
class BenchmarkResult:
    """Everything a benchmark produced; ``rows`` are the lines of results.csv."""

    config: BenchmarkConfig
    directory: Path
    dataset: str
    runs: list[SeedRun]
    failures: list[FailedRun]
    rows: list[dict[str, float | int | str]]


def result_columns() -> list[str]:
    """The columns of results.csv, in order."""
    columns = ["model", "seeds"]
    for metric in METRICS:
        for k in KS:
            columns += [f"{metric}@{k}_mean", f"{metric}@{k}_std"]
    return columns + ["best_epoch_mean", "epoch_s", "train_s", "peak_rss_mb"]


def run_benchmark(config: BenchmarkConfig, out: str | Path) -> BenchmarkResult:
    """Train every model for every seed, then write the tables and plots.

    Raises:
        ConfigError: an unknown model or option, or an invalid option value,
            found before anything is trained.
        MgatError: when every training run failed (their logs say why).
    """
    config.validate()
    options = model_options(config)
    dataset = Dataset.load(config.dataset)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)

    def train(job: tuple[str, int]) -> SeedRun | FailedRun:
        model, seed = job
        return train_seed(config, model, seed, options[model], directory)

    plan = [(model, seed) for model in config.models for seed in range(config.seeds)]
    with ThreadPoolExecutor(max_workers=config.jobs) as pool:
        outcomes = list(pool.map(train, plan))
    runs = [o for o in outcomes if not isinstance(o, FailedRun)]
    failures = [o for o in outcomes if isinstance(o, FailedRun)]
    if not runs:
        raise MgatError(
            f"every training run failed ({len(failures)}); see the logs under "
            f"{directory / 'runs'}."
        )

    rows = summarize(runs)
    result = BenchmarkResult(config, directory, dataset.name, runs, failures, rows)
    write_csv(rows, directory / "results.csv")
    write_markdown(result, directory / "results.md")
    plot_curves(runs, directory / "curves.png")
    write_cold_items(dataset, runs, directory / "cold_items.md")
    return result


def model_options(config: BenchmarkConfig) -> dict[str, dict[str, str]]:
    """The overrides each model accepts, checked by resolving every config.

    An option goes to each model whose own or training options include it; an
    option that no model knows is an error, as is a value a model rejects.
    """
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    known: set[str] = set()
    chosen = {}
    for model in config.models:
        cls = model_class(model)
        fields = {f.name for f in dataclasses.fields(cls.config_class)} | train_fields
        chosen[model] = {k: v for k, v in config.options.items() if k in fields}
        known |= fields
        flags = {"seed": 0, "epochs": config.epochs, "budget_s": config.budget_s}
        flags = {k: v for k, v in flags.items() if v is not None}
        resolve_config(model, config.dataset, None, None, {**chosen[model], **flags})

    unknown = sorted(set(config.options) - known)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)}: no model among "
            f"{', '.join(config.models)} has them, nor the training config. Check "
            "the spelling (`mgat train --help` lists the training options)."
        )
    return chosen


def train_command(
    config: BenchmarkConfig,
    model: str,
    seed: int,
    options: dict[str, str],
    directory: Path,
) -> list[str]:
    """The ``python -m mgat train`` command line of one run."""
    dataset = Path(config.dataset)
    command = [
        sys.executable, "-m", "mgat", "train",
        "--model", model,
        "--dataset", str(dataset.resolve()) if dataset.exists() else config.dataset,
        "--out", str(directory),
        "--seed", str(seed),
        "--overwrite",
    ]  # fmt: skip
    if config.epochs is not None:
        command += ["--epochs", str(config.epochs)]
    if config.budget_s is not None:
        command += ["--budget", str(config.budget_s)]
    return command + [f"{k}={v}" for k, v in options.items()]


def train_seed(
    config: BenchmarkConfig,
    model: str,
    seed: int,
    options: dict[str, str],
    out: Path,
) -> SeedRun | FailedRun:
    """Train one (model, seed) in a fresh process and read its run directory."""
    directory = out / "runs" / model / f"seed{seed}"
    log = directory.parent / f"seed{seed}.log"
    shutil.rmtree(directory, ignore_errors=True)  # no stale metrics if it fails
    directory.parent.mkdir(parents=True, exist_ok=True)
    command = train_command(config, model, seed, options, directory)
    logger.info("training %s, seed %d: %s", model, seed, shlex.join(command))

    # Progress bars would fill the log with carriage returns.
    env = {**os.environ, "TQDM_DISABLE": "1"}
    with open(log, "w") as handle:
        process = subprocess.run(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False
        )
    if process.returncode != 0:
        logger.warning(
            "%s seed %d failed (exit status %d); its output is in %s",
            model, seed, process.returncode, log,
        )  # fmt: skip
        return FailedRun(model, seed, process.returncode, log)

    try:
        run = read_run(model, seed, directory)
    except (MgatError, OSError, KeyError, ValueError) as err:
        logger.warning("%s seed %d left an unreadable run: %s", model, seed, err)
        return FailedRun(model, seed, process.returncode, log)
    logger.info(
        "%s seed %d: best epoch %d, test %s %.4f, %.1f s, peak %.0f MiB",
        model, seed, run.best_epoch, CURVE_METRIC,
        run.test.get(CURVE_METRIC, math.nan), run.train_s, run.peak_rss_mb,
    )  # fmt: skip
    return run


def read_run(model: str, seed: int, directory: Path) -> SeedRun:
    """A ``SeedRun`` from a run directory's metrics.json and history.csv.

    Raises:
        MgatError: metrics.json is missing or not JSON.
        OSError: history.csv is missing.
    """
    metrics = _read_json(directory / "metrics.json")
    with open(directory / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))

    epoch_times = [float(row["epoch_s"]) for row in history]
    column = f"valid_{CURVE_METRIC}"
    curve = [
        (int(row["epoch"]), float(row["elapsed_s"]), float(row[column]))
        for row in history
        if row.get(column)
    ]
    return SeedRun(
        model=model,
        seed=seed,
        directory=directory,
        best_epoch=int(metrics["best_epoch"]),
        test={k: float(v) for k, v in metrics["test"].items()},
        train_s=float(metrics["train_s"]),
        epoch_s=float(np.mean(epoch_times)) if epoch_times else math.nan,
        peak_rss_mb=float(metrics.get("peak_rss_mb", math.nan)),
        curve=curve,
    )


def summarize(runs: list[SeedRun]) -> list[dict[str, float | int | str]]:
    """One results.csv row per model, in the order the models were trained.

    Metrics are the mean and sample standard deviation (n - 1; NaN for a single
    seed) over seeds; ``epoch_s`` and ``train_s`` are means over runs and
    ``peak_rss_mb`` the largest peak among them.
    """
    rows = []
    for model in dict.fromkeys(run.model for run in runs):
        group = [run for run in runs if run.model == model]
        row: dict[str, float | int | str] = {"model": model, "seeds": len(group)}
        for metric in METRICS:
            for k in KS:
                values = [run.test.get(f"{metric}@{k}", math.nan) for run in group]
                row[f"{metric}@{k}_mean"], row[f"{metric}@{k}_std"] = _mean_std(values)
        row["best_epoch_mean"] = float(np.mean([run.best_epoch for run in group]))
        row["epoch_s"] = float(np.mean([run.epoch_s for run in group]))
        row["train_s"] = float(np.mean([run.train_s for run in group]))
        row["peak_rss_mb"] = float(max(run.peak_rss_mb for run in group))
        rows.append(row)
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    """results.csv; NaN (a single seed's std) is left empty."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, result_columns())
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


def write_markdown(result: BenchmarkResult, path: Path) -> None:
    """results.md: trained models (mean ± std), published figures, provenance."""
    header = ["model", "seeds"]
    header += [f"{metric}@{k}" for metric in METRICS for k in KS]
    header += ["best epoch", "s/epoch", "train s", "peak RSS MiB"]

    published = PUBLISHED.get(result.dataset.lower(), {})
    table = [_markdown_row(row) for row in result.rows]
    table += [_published_row(model, figures) for model, figures in published.items()]

    lines = [
        f"# Benchmark on {result.dataset}",
        "",
        "Test metrics at the epoch of best validation Recall@20, full ranking "
        "(training and validation items masked), mean ± sample standard deviation "
        "over seeds. s/epoch excludes evaluation; train s is a whole run's "
        "training loop with its validation; peak RSS is the largest among the "
        "model's training processes.",
        "",
        *_markdown_table(header, table),
        "",
    ]
    if published:
        lines += [
            f"Rows marked (published) are the figures of {PUBLISHED_SOURCE}, on "
            "this same split; they were not reproduced here.",
            "",
        ]
    for failed in result.failures:
        lines.append(
            f"- {failed.model} seed {failed.seed} failed (exit status "
            f"{failed.returncode}): see {failed.log}"
        )
    if result.failures:
        lines.append("")
    lines += [provenance(result.config), ""]
    path.write_text("\n".join(lines))


def provenance(config: BenchmarkConfig) -> str:
    """A sentence saying how the benchmark was run and on what machine."""
    budget = (
        f"{config.budget_s:g} s of training per run"
        if config.budget_s is not None
        else "no time budget"
    )
    seeds = "seed 0" if config.seeds == 1 else f"seeds 0-{config.seeds - 1}"
    # Each run uses torch's default thread count unless threads= is given.
    threads = config.options.get("threads") or torch.get_num_threads()
    at_once = "one run at a time" if config.jobs == 1 else f"{config.jobs} at a time"
    return (
        f"Made with `{command_line(config)}`: {seeds}, {budget}, one process per "
        f"run ({at_once}, torch threads: {threads}), on {os.cpu_count()} CPU cores, "
        f"{platform.system()} {platform.machine()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}."
    )


def command_line(config: BenchmarkConfig) -> str:
    """The ``mgat benchmark`` command that reproduces ``config``."""
    parts = [
        "mgat", "benchmark",
        "--dataset", config.dataset,
        "--models", ",".join(config.models),
        "--seeds", str(config.seeds),
    ]  # fmt: skip
    if config.epochs is not None:
        parts += ["--epochs", str(config.epochs)]
    if config.budget_s is not None:
        parts += ["--budget", f"{config.budget_s:g}"]
    if config.jobs != 1:
        parts += ["--jobs", str(config.jobs)]
    parts += [f"{k}={v}" for k, v in config.options.items()]
    return shlex.join(parts)


def plot_curves(runs: list[SeedRun], path: Path) -> None:
    """Validation Recall@20 of each model's lowest seed, by epoch and by seconds.

    One seed per model rather than a mean: runs stop at different epochs and
    times, so a mean over seeds has no common axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for model in dict.fromkeys(run.model for run in runs):
        run = min((r for r in runs if r.model == model), key=lambda r: r.seed)
        if not run.curve:
            continue
        epochs, seconds, values = zip(*run.curve, strict=True)
        label = f"{model} (seed {run.seed})"
        by_epoch.plot(epochs, values, marker=".", label=label)
        by_time.plot(seconds, values, marker=".", label=label)
    by_epoch.set(xlabel="epoch", ylabel=f"validation {CURVE_METRIC}", title="by epoch")
    by_time.set(
        xlabel="wall-clock seconds (training and validation)",
        ylabel=f"validation {CURVE_METRIC}",
        title="by time",
    )
    if by_epoch.lines:
        by_epoch.legend()
    fig.suptitle("Validation curves, the lowest seed of each model")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_cold_items(dataset: Dataset, runs: list[SeedRun], path: Path) -> None:
    """cold_items.md: each saved best model's test metrics on cold items only.

    The targets are restricted to test items without a training interaction, so
    the averages run over the users who have at least one such item in the test
    split. Two tables: every item ranked (can a cold item reach the top of the
    whole catalogue?) and only the cold items ranked (which new item will the
    user pick?).
    """
    cold = dataset.cold_items()
    targets = cold_item_targets(dataset.matrix("test"), cold)
    users = int((np.diff(targets.indptr) > 0).sum())
    lines = [
        f"# Cold items on {dataset.name}",
        "",
        f"{len(cold)} items have no training interaction; the test split holds "
        f"{targets.nnz} interactions with them, from {users} users. Test metrics "
        "of each run's best model with only those interactions as targets "
        "(training and validation items masked), mean ± sample standard "
        "deviation over seeds.",
        "",
    ]
    if targets.nnz == 0:
        lines.append("No cold test interaction: nothing to evaluate.")
        path.write_text("\n".join([*lines, ""]))
        return

    protocols = [
        ("Every item ranked", "The whole catalogue is ranked for each user.", None),
        (
            "Only the cold items ranked",
            f"Each user's candidates are the {len(cold)} cold items: which of "
            "the items nobody has interacted with yet will the user pick?",
            cold,
        ),
    ]
    candidates = [items for _, _, items in protocols]
    scores = [_cold_metrics(run, dataset, targets, candidates) for run in runs]
    for number, (title, text, _) in enumerate(protocols):
        table = _cold_table(runs, [s[number] for s in scores])
        lines += [f"## {title}", "", text, "", *table, ""]
    path.write_text("\n".join(lines))


def _cold_table(runs: list[SeedRun], scores: list[dict[str, float]]) -> list[str]:
    """Markdown rows of every model's mean cold-item metrics over its seeds.

    ``scores`` holds the metrics of each run, in the order of ``runs``.
    """
    header = ["model", "seeds", *(f"{m}@{k}" for m in METRICS for k in KS)]
    table = []
    for model in dict.fromkeys(run.model for run in runs):
        group = [s for run, s in zip(runs, scores, strict=True) if run.model == model]
        cells = [model, str(len(group))]
        for metric in METRICS:
            for k in KS:
                mean, std = _mean_std([s[f"{metric}@{k}"] for s in group])
                cells.append(_mean_std_cell(mean, std))
        table.append(cells)
    return _markdown_table(header, table)


def _cold_metrics(
    run: SeedRun, dataset: Dataset, targets, candidates: list
) -> list[dict[str, float]]:
    """A run's test metrics on ``targets`` for each candidate set (None: all)."""
    model = load_model(run.directory / "model").model
    return [
        evaluate_model(model, dataset, "test", KS, targets=targets, items=items)
        for items in candidates
    ]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise MgatError(
            f"{path}: cannot read the run's metrics ({err}); the training process "
            "exited cleanly but left no valid metrics.json. Rerun the benchmark."
        ) from err


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if len(array) > 1 else math.nan
    return float(array.mean()), std


def _csv_value(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, 6)
    return value


def _markdown_row(row: dict) -> list[str]:
    cells = [str(row["model"]), str(row["seeds"])]
    for metric in METRICS:
        for k in KS:
            key = f"{metric}@{k}"
            cells.append(_mean_std_cell(row[f"{key}_mean"], row[f"{key}_std"]))
    cells.append(f"{row['best_epoch_mean']:.1f}")
    cells.append(f"{row['epoch_s']:.2f}")
    cells.append(f"{row['train_s']:.1f}")
    cells.append(f"{row['peak_rss_mb']:.0f}")
    return cells


def _mean_std_cell(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    if math.isnan(std):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f}"


def _published_row(model: str, figures: dict[str, float]) -> list[str]:
    cells = [f"{model} (published)", "-"]
    for metric in METRICS:
        for k in KS:
            value = figures.get(f"{metric}@{k}")
            cells.append("-" if value is None else f"{value:.4f}")
    return cells + ["-"] * 4


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]
