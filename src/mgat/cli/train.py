"""``mgat train`` and ``mgat evaluate``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from mgat.checkpoint import latest_epoch
from mgat.config import parse_assignments
from mgat.data import Dataset
from mgat.distributed import launch
from mgat.errors import ConfigError, MgatError
from mgat.evaluation import evaluate_sampled, format_table
from mgat.models import MODELS
from mgat.runs import Run, fit, load_run, read_run_config, resume
from mgat.train import evaluate_model, split_targets


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model and write a run directory",
        description="Train a model; extra option=value pairs set model or "
        "training options (e.g. lr=0.001 num_layers=2 gate=concat).",
    )
    train.add_argument("--model", choices=sorted(MODELS), help="default: mgat")
    train.add_argument("--dataset", help="directory or built-in (default: tiktok)")
    train.add_argument("--out", help="run directory to write")
    train.add_argument(
        "--preset", help="named configuration (mgat: released, paper; mmgcn: paper)"
    )
    train.add_argument("--config", help="JSON config, e.g. a run's config.json")
    train.add_argument("--seed", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    train.add_argument("--budget", type=float, help="training time cap in seconds")
    train.add_argument("--overwrite", action="store_true", help="replace --out")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its checkpoint; RUN_DIR/config.json "
        "gives the model, dataset and options",
    )
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train with N local processes (DistributedDataParallel, batch size "
        "per process; docs/distributed.md)",
    )
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


@dataclass
class TrainJob:
    """One ``mgat train`` command; each process of an ``--nproc`` run gets it."""

    out: str
    options: dict
    resume: bool = False
    dataset: str = "tiktok"
    model: str = "mgat"
    preset: str | None = None
    config_file: str | None = None
    log_level: int = logging.INFO

    def run(self, progress=None) -> Run:
        if self.resume:
            return resume(self.out, progress, **self.options)
        return fit(
            self.dataset,
            model=self.model,
            preset=self.preset,
            out=self.out,
            config_file=self.config_file,
            progress=progress,
            **self.options,
        )


def run_train(args: argparse.Namespace) -> int:
    job = _train_job(args)
    if args.nproc > 1:
        if "WORLD_SIZE" in os.environ:
            raise ConfigError(
                "--nproc starts its own processes, but this command already runs "
                "under a launcher (WORLD_SIZE is set). Leave --nproc out; torchrun "
                "--nproc-per-node sets the number of processes."
            )
        launch(_train_rank, args.nproc, job)
        metrics = json.loads((Path(job.out) / "metrics.json").read_text())
        _report(metrics["best_epoch"], metrics["stopped_by"], metrics["test"], job.out)
        return 0

    run = job.run(_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        result = run.result
        _report(result.best_epoch, result.stopped_by, result.test, job.out)
    return 0


def _train_job(args: argparse.Namespace) -> TrainJob:
    """Check the flags and the run directory; the command as a ``TrainJob``."""
    options = parse_assignments(args.options)
    flags = {"seed": args.seed, "epochs": args.epochs, "device": args.device}
    flags["budget_s"] = args.budget
    options.update({k: v for k, v in flags.items() if v is not None})
    level = logging.getLogger().getEffectiveLevel()
    if args.resume:
        _check_resume_flags(args)
        read_run_config(args.resume)  # fails early when it is not a run
        return TrainJob(args.resume, options, resume=True, log_level=level)

    if not args.out:
        raise ConfigError(
            "--out: expected the run directory to write (or --resume RUN_DIR to "
            "continue an interrupted run)."
        )
    if int(os.environ.get("RANK", "0")) == 0:  # the other ranks do not write
        _check_out(Path(args.out), args.overwrite)
    return TrainJob(
        args.out,
        options,
        dataset=args.dataset or "tiktok",
        model=args.model or "mgat",
        preset=args.preset,
        config_file=args.config,
        log_level=level,
    )


def _check_resume_flags(args: argparse.Namespace) -> None:
    given = [
        flag
        for flag, value in (
            ("--out", args.out),
            ("--model", args.model),
            ("--dataset", args.dataset),
            ("--preset", args.preset),
            ("--config", args.config),
            ("--overwrite", args.overwrite),
        )
        if value
    ]
    if given:
        raise ConfigError(
            f"--resume takes the model, dataset and options from "
            f"{Path(args.resume) / 'config.json'}; leave out {', '.join(given)}. "
            "Training options (--epochs, lr=...) may still be changed."
        )


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; expected a directory.")
    if not out.exists() or not any(out.iterdir()) or overwrite:
        return
    epoch = latest_epoch(out)
    if epoch is None:
        fix = "Pass --overwrite to replace it"
    else:
        fix = (
            f"It has a checkpoint after epoch {epoch}: pass --resume {out} to "
            "continue it, or --overwrite to replace it"
        )
    raise ConfigError(
        f"run directory {out} already exists and is not empty. {fix}, or choose "
        "another --out."
    )


def _train_rank(job: TrainJob) -> None:
    """One process of an ``--nproc`` run: log with its rank; report errors."""
    rank = int(os.environ["RANK"])
    logging.basicConfig(
        level=job.log_level if rank == 0 else max(job.log_level, logging.WARNING),
        format=f"%(levelname)s %(name)s [rank {rank}]: %(message)s",
    )
    try:
        job.run(_progress if rank == 0 else None)
    except MgatError as err:
        print(f"mgat: error (rank {rank}): {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _progress(iterable, **options):
    return tqdm(iterable, leave=False, **options)


def _report(best_epoch: int, stopped_by: str, test: dict, out: str) -> None:
    print(f"best epoch {best_epoch} ({stopped_by}); test:")
    print(format_table(test))
    print(f"run written to {out}")


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
