"""Epoch time of 2-process data-parallel training against one process.

Usage: python benchmarks/ddp_speedup.py [--dataset tiktok] [--rounds 3]
       [--epochs 3] [--batch 2048] [option=value ...]

Runs ``mgat train`` in three settings, interleaved round by round so that a change
of machine load hits all of them alike:

- one process, ``batch_size=B``, all cores' threads;
- two processes (``--nproc 2``), ``batch_size=B`` each, half the threads each;
- one process, ``batch_size=2B``: the same pairs per step as two processes,
  hence the same optimisation path (docs/distributed.md).

Each run trains ``--epochs`` epochs; the median epoch time after the first
(which includes warm-up) is its figure. Prints a table of medians over rounds
and the speed-ups of two processes against each single-process setting.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = ("1 process, B", "2 processes, B each", "1 process, 2B")


def command(setting: str, args, out: Path) -> list[str]:
    """The ``mgat train`` command of one setting."""
    cores = os.cpu_count() or 1
    batch = 2 * args.batch if setting.endswith("2B") else args.batch
    nproc = 2 if setting.startswith("2") else 1
    threads = max(cores // nproc, 1)
    line = [
        sys.executable, "-m", "mgat", "train",
        "--dataset", args.dataset, "--out", str(out), "--overwrite",
        "--epochs", str(args.epochs), "--nproc", str(nproc),
        f"batch_size={batch}", f"threads={threads}", "patience=1000",
    ]  # fmt: skip
    return line + args.options


def epoch_seconds(out: Path) -> float:
    """Median epoch time of a run after its first epoch, from history.csv."""
    with open(out / "history.csv", newline="") as handle:
        times = [float(row["epoch_s"]) for row in csv.DictReader(handle)]
    return statistics.median(times[1:] or times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="tiktok")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("options", nargs="*", help="option=value for mgat train")
    args = parser.parse_args(argv)

    seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
    env = {**os.environ, "TQDM_DISABLE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(args.rounds):
            for setting in SETTINGS:
                out = Path(scratch) / f"run{number}-{SETTINGS.index(setting)}"
                subprocess.run(
                    command(setting, args, out),
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                seconds[setting].append(epoch_seconds(out))

    median = {s: statistics.median(v) for s, v in seconds.items()}
    print(f"| setting | s/epoch, median of {args.rounds} rounds | rounds |")
    print("|---|---:|---|")
    for setting in SETTINGS:
        rounds = ", ".join(f"{v:.2f}" for v in seconds[setting])
        print(f"| {setting} (B = {args.batch}) | {median[setting]:.2f} | {rounds} |")
    two = median[SETTINGS[1]]
    print()
    for setting in (SETTINGS[0], SETTINGS[2]):
        print(f"2 processes against {setting}: {median[setting] / two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
