"""``mgat benchmark``: several models over several seeds, as tables and plots."""

from __future__ import annotations

import argparse

from mgat.benchmark import DEFAULT_MODELS, BenchmarkConfig, run_benchmark
from mgat.config import parse_assignments


def register(subparsers) -> None:
    benchmark = subparsers.add_parser(
        "benchmark",
        help="compare models over several seeds (results.csv, results.md, plots)",
        description="Train every model with its default preset for seeds 0..N-1, "
        "each in its own process, and report test metrics at the best validation "
        "epoch (mean and std over seeds), speed, peak memory, validation curves "
        "and cold-item metrics. Extra option=value pairs go to every model that "
        "has the option (e.g. embed_dim=32 threads=2).",
    )
    benchmark.add_argument("--dataset", default="tiktok", help="directory or built-in")
    benchmark.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated model names (default: %(default)s)",
    )
    benchmark.add_argument("--seeds", type=int, default=3, help="runs per model")
    benchmark.add_argument("--out", required=True, help="directory to write")
    benchmark.add_argument(
        "--budget",
        type=float,
        help="training seconds per run; each run also spends a few seconds "
        "starting and on its last epoch and test (e.g. 90 keeps 5 models x 3 "
        "seeds near 30 minutes)",
    )
    benchmark.add_argument("--epochs", type=int, help="maximum epochs per run")
    benchmark.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="training processes at once (default 1); more share the CPU, which "
        "the reported times reflect",
    )
    benchmark.add_argument("options", nargs="*", help="option=value overrides")
    benchmark.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = BenchmarkConfig(
        dataset=args.dataset,
        models=tuple(name.strip() for name in args.models.split(",") if name.strip()),
        seeds=args.seeds,
        epochs=args.epochs,
        budget_s=args.budget,
        jobs=args.jobs,
        options=parse_assignments(args.options),
    )
    result = run_benchmark(config, args.out)

    print((result.directory / "results.md").read_text())
    for name in ("results.csv", "results.md", "curves.png", "cold_items.md"):
        print(f"wrote {result.directory / name}")
    if result.failures:
        failed = ", ".join(f"{f.model} seed {f.seed}" for f in result.failures)
        print(f"{len(result.failures)} run(s) failed: {failed}")
        return 1
    return 0
