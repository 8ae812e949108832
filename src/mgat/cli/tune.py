"""``mgat tune``: grid or random search on the validation split."""

from __future__ import annotations

import argparse

from mgat.config import parse_assignments
from mgat.models import MODELS
from mgat.tune import SELECT_METRIC, TuneConfig, read_grid, run_tune


def register(subparsers) -> None:
    tune = subparsers.add_parser(
        "tune",
        help="search hyperparameters on the validation split",
        description="Train one trial per combination of a JSON grid (option name "
        "to list of values), choose the best by validation Recall@20 and write "
        "trials.csv and best_config.json (for `mgat train --config`). Extra "
        "option=value pairs are fixed for every trial.",
    )
    tune.add_argument("--model", default="mgat", choices=sorted(MODELS))
    tune.add_argument("--dataset", default="tiktok", help="directory or built-in")
    tune.add_argument("--grid", required=True, help="JSON file: option -> values")
    tune.add_argument("--search", choices=("grid", "random"), default="grid")
    tune.add_argument("--trials", type=int, help="random search: combinations")
    tune.add_argument("--seed", type=int, default=0, help="draws and training seed")
    tune.add_argument("--out", help="directory to write (default: tune-<model>)")
    tune.add_argument("--budget", type=float, help="training seconds per trial")
    tune.add_argument("--epochs", type=int, help="maximum epochs per trial")
    tune.add_argument("--preset", help="the preset trials start from")
    tune.add_argument("options", nargs="*", help="fixed option=value overrides")
    tune.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = TuneConfig(
        model=args.model,
        dataset=args.dataset,
        grid=read_grid(args.grid),
        search=args.search,
        trials=args.trials,
        seed=args.seed,
        preset=args.preset,
        epochs=args.epochs,
        budget_s=args.budget,
        options=parse_assignments(args.options),
    )
    result = run_tune(config, args.out or f"tune-{args.model}")

    best = result.best
    failed = sum(trial.error is not None for trial in result.trials)
    chosen = " ".join(f"{k}={v}" for k, v in best.options.items())
    print(
        f"{len(result.trials)} trial(s), {failed} failed; best: trial {best.number} "
        f"({chosen}), validation {SELECT_METRIC} {best.score:.4f}"
    )
    print(f"wrote {result.directory / 'trials.csv'}")
    print(f"wrote {result.directory / 'best_config.json'}")
    print(
        f"train it: mgat train --model {args.model} --dataset {args.dataset} "
        f"--config {result.directory / 'best_config.json'} --out RUN_DIR"
    )
    return 0
