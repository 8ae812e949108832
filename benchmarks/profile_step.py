"""Where a training step's time goes: torch.profiler's top operators.

Usage: python benchmarks/profile_step.py [--preset released] [--steps 5]
       [--reference] [--rows 12] [option=value ...]

Profiles ``--steps`` training steps (forward, backward, optimizer) of MGAT on the
bundled TikTok set after two warm-up steps and prints the operators with the most
self CPU time. ``--reference`` profiles the edge-by-edge reference layer instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import build_trainer  # noqa: E402
from mgat.bench import time_batches  # noqa: E402
from mgat.config import parse_assignments  # noqa: E402
from mgat.data import Dataset  # noqa: E402
from mgat.runs import resolve_config  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="tiktok")
    parser.add_argument("--preset", default="released")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("options", nargs="*")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    dataset = Dataset.load(args.dataset)
    config = resolve_config(
        "mgat", args.dataset, args.preset, None, parse_assignments(args.options)
    )
    trainer = build_trainer(dataset, config, args.reference)
    time_batches(trainer, 2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        time_batches(trainer, args.steps)
    table = prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=36
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
