"""Training time and memory against graph size, on generated power-law graphs.

Usage: python benchmarks/scaling.py [--sizes 1e5 1e6 1e7] [--steps 16]
       [--layers L] [--recompute] [--release-memory] [--tile-nodes N]
       [--out docs/scaling]

For each size E it generates a bipartite graph with E interactions whose user and
item degrees follow power laws (E/20 users, E/50 items), two random 128-d item
modalities, and trains MGAT (the default configuration) for the warm-up steps of
``mgat bench`` (``WARMUP_BATCHES``: until then the heap grows and steps page-fault)
and then measures epochs (the median of three to five, as many as fit in a minute),
one process per size so that peak memory is per size.
Each epoch takes ``--steps`` optimizer steps, so one propagation is shared by
E/steps pairs. ``--tile-nodes`` sets ``mgat.graph.TILE_NODES``, the column tile
width of the CPU sparse products (0: never tile). Prints a table, fits the growth
exponent of epoch time over E by least squares on the log-log points, and writes
``scaling.md`` and ``scaling.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: A size measures at least MIN_EPOCHS and at most MAX_EPOCHS epochs, and stops
#: repeating them once they took REPEAT_S seconds in all; the median is reported.
#: One epoch alone can be a quarter off on a shared machine.
MIN_EPOCHS, MAX_EPOCHS, REPEAT_S = 3, 5, 60.0


def power_law_graph(num_edges: int, seed: int = 0) -> tuple[np.ndarray, int, int]:
    """(E', 2) unique (user, item) pairs with power-law degrees, and U, I."""
    rng = np.random.default_rng(seed)
    num_users, num_items = max(num_edges // 20, 10), max(num_edges // 50, 10)
    user_p = _zipf(num_users, 0.8)
    item_p = _zipf(num_items, 0.9)
    draws = int(num_edges * 1.15)  # a margin for the duplicates dropped below
    users = rng.choice(num_users, size=draws, p=user_p)
    items = rng.choice(num_items, size=draws, p=item_p)
    keys = np.unique(users.astype(np.int64) * num_items + items)
    keys = rng.permutation(keys)[:num_edges]
    return np.stack([keys // num_items, keys % num_items], 1), num_users, num_items


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def measure(
    num_edges: int,
    steps: int,
    layers: int | None,
    recompute: bool = False,
    keep_freed_memory: bool = True,
    tile_nodes: int | None = None,
) -> dict:
    """Build the graph, take the warm-up steps and time epochs (in-process)."""
    import torch

    import mgat.graph
    from mgat.bench import WARMUP_BATCHES, peak_rss_mb, time_batches
    from mgat.data import Dataset
    from mgat.models import ModelData, create_model
    from mgat.presets import get_preset
    from mgat.train import TrainConfig, Trainer

    torch.set_num_threads(2)
    if tile_nodes is not None:
        mgat.graph.TILE_NODES = tile_nodes
    pairs, num_users, num_items = power_law_graph(num_edges)
    rng = np.random.default_rng(1)
    features = {
        m: rng.normal(size=(num_items, 128)).astype(np.float32)
        for m in ("visual", "acoustic")
    }
    held = len(pairs) // 200  # a token valid/test split; not evaluated here
    splits = {
        "train": pairs[2 * held :],
        "valid": pairs[:held],
        "test": pairs[held : 2 * held],
    }
    dataset = Dataset(
        "powerlaw", np.arange(num_users), np.arange(num_items), splits, features
    )
    preset = get_preset("mgat", None)
    model_values = {**preset["model"], "recompute": recompute}
    if layers is not None:
        model_values["num_layers"] = layers
    train_values = {
        **preset["train"],
        "batch_size": -(-len(splits["train"]) // steps),
        "keep_freed_memory": keep_freed_memory,
    }
    model = create_model("mgat", ModelData.from_dataset(dataset), model_values)
    trainer = Trainer(model, dataset, TrainConfig(**train_values))

    time_batches(trainer, WARMUP_BATCHES)
    epochs = []
    while len(epochs) < MIN_EPOCHS or (
        len(epochs) < MAX_EPOCHS and sum(epochs) < REPEAT_S
    ):
        tick = time.perf_counter()
        trainer.train_epoch(len(epochs) + 1)
        epochs.append(time.perf_counter() - tick)
    epoch_s = float(np.median(epochs))
    return {
        "interactions": int(len(splits["train"])),
        "users": num_users,
        "items": num_items,
        "epoch_s": epoch_s,
        "epochs_measured": len(epochs),
        "peak_rss_mb": peak_rss_mb(),
    }


def fit_exponent(sizes, times) -> float:
    slope, _ = np.polyfit(np.log(sizes), np.log(times), 1)
    return float(slope)


def write_report(
    rows: list[dict], exponent: float, out: Path, steps: int, how: str
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "| interactions | users | items | s/epoch | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['interactions']:,} | {r['users']:,} | {r['items']:,} | "
            f"{r['epoch_s']:.2f} | {r['peak_rss_mb']:,.0f} |"
            for r in rows
        ),
        "",
        f"Growth exponent of epoch time over interactions: {exponent:.2f} "
        f"({steps} steps per epoch)."
        if math.isfinite(exponent)
        else f"One size, no growth exponent ({steps} steps per epoch).",
        "",
        f"Made with `{how}`, 2 threads.",
    ]
    (out / "scaling.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["interactions"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.loglog(sizes, [r["epoch_s"] for r in rows], "o-")
    left.set(xlabel="interactions", ylabel="seconds per epoch")
    left.set_title(f"epoch time (exponent {exponent:.2f})")
    right.loglog(sizes, [r["peak_rss_mb"] for r in rows], "o-", color="tab:orange")
    right.set(xlabel="interactions", ylabel="peak RSS (MiB)", title="peak memory")
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e5, 1e6, 1e7])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument(
        "--layers", type=int, help="attention layers (default: the default preset's)"
    )
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="recompute attention activations in the backward pass (less memory)",
    )
    parser.add_argument(
        "--release-memory",
        action="store_true",
        help="train with keep_freed_memory=false (slower at scale, less memory)",
    )
    parser.add_argument(
        "--tile-nodes",
        type=int,
        help="column tile width of the CPU sparse products (0: never tile)",
    )
    parser.add_argument("--out", default="docs/scaling")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # child process: measure one size, print JSON
        row = measure(
            int(args.one),
            args.steps,
            args.layers,
            args.recompute,
            keep_freed_memory=not args.release_memory,
            tile_nodes=args.tile_nodes,
        )
        print(json.dumps(row))
        return 0

    rows = []
    print(f"{'interactions':>14}{'s/epoch':>10}{'peak MiB':>10}")
    for size in args.sizes:
        command = [
            sys.executable, __file__, "--one", str(size), "--steps", str(args.steps),
        ]  # fmt: skip
        if args.layers is not None:
            command += ["--layers", str(args.layers)]
        if args.recompute:
            command.append("--recompute")
        if args.release_memory:
            command.append("--release-memory")
        if args.tile_nodes is not None:
            command += ["--tile-nodes", str(args.tile_nodes)]
        output = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(output.stdout.strip().splitlines()[-1])
        rows.append(row)
        size, seconds, memory = row["interactions"], row["epoch_s"], row["peak_rss_mb"]
        print(f"{size:>14,}{seconds:>10.2f}{memory:>10,.0f}")
    # A growth exponent needs at least two sizes.
    exponent = math.nan
    if len(rows) > 1:
        exponent = fit_exponent(
            [r["interactions"] for r in rows], [r["epoch_s"] for r in rows]
        )
        print(f"growth exponent of epoch time: {exponent:.2f}")
    how = shlex.join(["python", "benchmarks/scaling.py", *(argv or sys.argv[1:])])
    write_report(rows, exponent, Path(args.out), args.steps, how)
    return 0 if len(rows) == 1 or math.isfinite(exponent) else 1


if __name__ == "__main__":
    sys.exit(main())
