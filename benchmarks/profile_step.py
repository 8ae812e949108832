"""Where a training step's time goes: torch.profiler's top operators.

Usage: python benchmarks/profile_step.py [--preset released] [--steps 5]
       [--warmup 12] [--reference] [--rows 12] [--flops] [option=value ...]

Profiles ``--steps`` training steps (forward, backward, optimizer) of MGAT on the
bundled TikTok set after ``--warmup`` steps and prints the operators with the most
self CPU time. ``--reference`` profiles the edge-by-edge reference layer instead.
``--flops`` also counts the floating-point operations of the matrix products per
step and divides them by this machine's rate on one such product: the time a step
cannot go below while it does that dense work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import build_trainer  # noqa: E402
from mgat.bench import WARMUP_BATCHES, time_batches  # noqa: E402
from mgat.config import parse_assignments  # noqa: E402
from mgat.data import Dataset  # noqa: E402
from mgat.runs import resolve_config  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="tiktok")
    parser.add_argument("--preset", default="released")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=WARMUP_BATCHES)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--flops", action="store_true")
    parser.add_argument("options", nargs="*")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    dataset = Dataset.load(args.dataset)
    config = resolve_config(
        "mgat", args.dataset, args.preset, None, parse_assignments(args.options)
    )
    trainer = build_trainer(dataset, config, args.reference)
    time_batches(trainer, args.warmup)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        times = time_batches(trainer, args.steps)
    table = prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=36
    )
    print(table)
    if args.flops:
        report_floor(trainer, min(times))
    return 0


def report_floor(trainer, measured: float) -> None:
    """Print the dense layers' FLOPs per step and the time floor they set."""
    flops = linear_flops(trainer)
    rate = matmul_rate(trainer.model.graph.num_nodes)
    print(
        f"dense (nn.Linear) FLOPs per step, forward and backward: {flops / 1e9:.2f} "
        f"G; this machine's rate on an (N, 256) x (256, 256) product: "
        f"{rate / 1e9:.1f} GFLOP/s; floor {flops / rate:.3f} s per step, against "
        f"{measured:.3f} s measured (fastest profiled step)"
    )


def linear_flops(trainer) -> float:
    """FLOPs of every ``nn.Linear`` in one training step.

    Forward, an (n, in) x (in, out) product, is 2 n in out; the backward pass
    adds the same for the weight's gradient, and again for the input's when the
    input needs one.
    """
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        x = inputs[0]
        forward = 2.0 * x.numel() * module.out_features
        total += forward * (3 if x.requires_grad else 2)

    linears = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear)]
    hooks = [m.register_forward_hook(count) for m in linears]
    try:
        time_batches(trainer, 1)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def matmul_rate(rows: int, width: int = 256, repeats: int = 20) -> float:
    """FLOP/s of an (rows, width) x (width, width) float32 product, best of 3."""
    a, b = torch.randn(rows, width), torch.randn(width, width)
    best = float("inf")
    for _ in range(3):
        tick = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - tick) / repeats)
    return 2 * rows * width * width / best


if __name__ == "__main__":
    sys.exit(main())
