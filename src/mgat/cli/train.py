"""``mgat train`` and ``mgat evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm.auto import tqdm

from mgat.config import parse_assignments
from mgat.data import Dataset
from mgat.errors import ConfigError
from mgat.evaluation import evaluate_sampled, format_table
from mgat.models import MODELS
from mgat.runs import fit, load_run
from mgat.train import evaluate_model, split_targets


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model and write a run directory",
        description="Train a model; extra option=value pairs set model or "
        "training options (e.g. lr=0.001 num_layers=2 gate=concat).",
    )
    train.add_argument("--model", default="mgat", choices=sorted(MODELS))
    train.add_argument("--dataset", default="tiktok", help="directory or built-in")
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--preset", help="named configuration (mgat: released, paper)")
    train.add_argument("--config", help="JSON config, e.g. a run's config.json")
    train.add_argument("--seed", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    train.add_argument("--budget", type=float, help="training time cap in seconds")
    train.add_argument("--overwrite", action="store_true", help="replace --out")
    train.add_argument("options", nargs="*", help="option=value overrides")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser(
        "evaluate", help="recompute a run's metrics from its checkpoint"
    )
    evaluate.add_argument("--run", required=True, help="a run directory")
    evaluate.add_argument("--protocol", choices=("full", "sampled"), default="full")
    evaluate.add_argument("--split", choices=("valid", "test"), default="test")
    evaluate.add_argument("--dataset", help="override the dataset the run names")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(
            f"run directory {out} already exists and is not empty. Pass --overwrite "
            "to replace it, or choose another --out."
        )
    options = parse_assignments(args.options)
    flags = {"seed": args.seed, "epochs": args.epochs, "device": args.device}
    flags["budget_s"] = args.budget
    options.update({k: v for k, v in flags.items() if v is not None})
    run = fit(
        args.dataset,
        model=args.model,
        preset=args.preset,
        out=out,
        config_file=args.config,
        progress=lambda it, **kw: tqdm(it, leave=False, **kw),
        **options,
    )
    print(f"best epoch {run.result.best_epoch} ({run.result.stopped_by}); test:")
    print(format_table(run.result.test))
    print(f"run written to {out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    saved, config = load_run(args.run)
    dataset = Dataset.load(args.dataset or config.dataset)
    if args.protocol == "full":
        ks = tuple(config.train_config.get("ks", (10, 20, 50)))
        metrics = evaluate_model(saved.model, dataset, args.split, ks)
    else:
        metrics = _sampled(saved.model, dataset, args.split)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"{args.protocol} ranking on {args.split}:")
        print(format_table(metrics))
    return 0


def _sampled(model, dataset: Dataset, split: str) -> dict[str, float]:
    targets, exclude = split_targets(dataset, split)
    others = [dataset.matrix(s) for s in ("valid", "test") if s != split]
    user_rep, item_rep = model.embed()

    def score_pairs(users, items):
        return (user_rep[users].unsqueeze(1) * item_rep[items]).sum(-1)

    return evaluate_sampled(score_pairs, targets, [*exclude, *others])
