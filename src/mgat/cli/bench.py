"""``mgat bench``: training and ranking speed, and peak memory, as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mgat import config as configuration
from mgat.bench import run_bench
from mgat.config import parse_assignments
from mgat.data import Dataset
from mgat.models import MODELS, ModelData, create_model
from mgat.runs import resolve_config
from mgat.train import TrainConfig, Trainer, resolve_device


def register(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="measure training and ranking speed and peak memory",
        description="Median seconds per epoch and per batch after a warm-up, "
        "seconds to rank every user's top K, peak resident memory.",
    )
    bench.add_argument("--dataset", default="tiktok")
    bench.add_argument("--model", default="mgat", choices=sorted(MODELS))
    bench.add_argument("--preset")
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--threads", type=int, help="torch CPU threads")
    bench.add_argument("--epochs", type=int, default=3, help="epochs to time")
    bench.add_argument("--batches", type=int, default=20, help="batches to time")
    bench.add_argument("--k", type=int, default=20)
    bench.add_argument("--out", help="JSON file to write (default: print only)")
    bench.add_argument("options", nargs="*", help="option=value overrides")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = Dataset.load(args.dataset)
    overrides = parse_assignments(args.options)
    overrides["device"] = args.device
    config = resolve_config(args.model, args.dataset, args.preset, None, overrides)
    train_config = configuration.build(TrainConfig, config.train_config)

    torch.manual_seed(train_config.seed)
    data = ModelData.from_dataset(dataset)
    model = create_model(args.model, data, config.model_config)
    model.to(resolve_device(train_config.device))
    trainer = Trainer(model, dataset, train_config)
    result = run_bench(trainer, dataset, args.epochs, args.batches, args.k)

    report = {
        "dataset": dataset.name,
        "model": args.model,
        "preset": args.preset,
        **result.to_dict(),
    }
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0
