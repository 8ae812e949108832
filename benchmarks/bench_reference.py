"""The library's MGAT against the edge-by-edge reference layer, in one process.

Usage: python benchmarks/bench_reference.py [--preset released] [--epochs 1]
       [--batches 10] [--threads 2] [--variant "batch_size=8192" ...]
       [--out FILE.json] [option=value ...]

Both run the same model (same weights, same data, same batches, same optimizer);
only the attention layer's implementation differs. Prints a table of seconds per
training batch and per epoch for both and their ratio. Each ``--variant`` adds a
library row with more options, e.g. a larger batch, which shares one propagation
between more pairs per step, or ``precision=bf16`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mgat import config as configuration  # noqa: E402
from mgat.bench import WARMUP_BATCHES, time_batches, time_epochs  # noqa: E402
from mgat.config import parse_assignments  # noqa: E402
from mgat.data import Dataset  # noqa: E402
from mgat.models import ModelData, create_model  # noqa: E402
from mgat.models.mgat import MGAT  # noqa: E402
from mgat.runs import resolve_config  # noqa: E402
from mgat.train import TrainConfig, Trainer  # noqa: E402
from reference_mgat import reference_branch  # noqa: E402


class ReferenceMGAT(MGAT):
    """MGAT whose branches run the reference layer instead of the sparse kernels."""

    def modality_representations(self, with_traces=False, ids=None):
        graph = self.graph
        ids = self.node_ids() if ids is None else ids
        reps = {
            name: reference_branch(branch, graph, ids)
            for name, branch in self.branches.items()
        }
        return reps, {}


def build_trainer(dataset, config, reference: bool, train_options=None):
    torch.manual_seed(0)
    data = ModelData.from_dataset(dataset)
    model = create_model("mgat", data, config.model_config)
    if reference:
        model.__class__ = ReferenceMGAT
    values = {**config.train_config, **(train_options or {})}
    return Trainer(model, dataset, configuration.build(TrainConfig, values))


def measure(trainer: Trainer, batches: int, epochs: int) -> dict[str, float]:
    time_batches(trainer, WARMUP_BATCHES)
    batch_s = statistics.median(time_batches(trainer, batches))
    epoch_s = statistics.median(time_epochs(trainer, epochs))
    return {"batch_s": batch_s, "epoch_s": epoch_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="tiktok")
    parser.add_argument("--preset", default="released")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="training options of an extra library row, e.g. 'batch_size=8192'",
    )
    parser.add_argument("--out")
    parser.add_argument("options", nargs="*")
    args = parser.parse_args(argv)

    variants = {v: parse_assignments(v.split()) for v in args.variant}
    if any("keep_freed_memory" in options for options in variants.values()):
        # mallopt is process-wide: the first trainer built sets it for all rows.
        parser.error(
            "--variant cannot change keep_freed_memory within one process; "
            "compare with `mgat bench ... keep_freed_memory=false` instead."
        )
    torch.set_num_threads(args.threads)
    dataset = Dataset.load(args.dataset)
    overrides = parse_assignments(args.options)
    config = resolve_config("mgat", args.dataset, args.preset, None, overrides)
    batch = config.train_config["batch_size"]

    rows = {
        "library": measure(
            build_trainer(dataset, config, False), args.batches, args.epochs
        ),
        "reference": measure(
            build_trainer(dataset, config, True), args.batches, args.epochs
        ),
    }
    for variant, options in variants.items():
        trainer = build_trainer(dataset, config, False, options)
        rows[f"library, {variant}"] = measure(trainer, args.batches, args.epochs)

    reference = rows["reference"]
    print(f"MGAT training on {dataset.name}, preset {args.preset}, batch {batch}, "
          f"{args.threads} threads")  # fmt: skip
    width = max(len(name) for name in rows) + 2
    print(f"{'implementation':<{width}}{'s/batch':>10}{'s/epoch':>10}{'speed-up':>10}")
    for name, row in rows.items():
        ratio = reference["epoch_s"] / row["epoch_s"]
        print(
            f"{name:<{width}}{row['batch_s']:>10.4f}{row['epoch_s']:>10.2f}"
            f"{ratio:>9.1f}x"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
