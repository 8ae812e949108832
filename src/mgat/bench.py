"""Speed and memory measurements of training and ranking (``mgat bench``).

Measures, after a warm-up, the median seconds per training epoch and per training
batch, the seconds to rank every user's top K items (embedding included), and the
process's peak resident memory.

Shapes: U users, I items, B users per ranking chunk, K cut-off.
"""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import scipy
import torch

from mgat import __version__
from mgat.data import Dataset
from mgat.models import Recommender
from mgat.train import Trainer


@dataclass
class BenchResult:
    """Timings in seconds (medians) and peak memory in MiB."""

    train_epoch_s: float
    train_batch_s: float
    eval_full_s: float
    peak_rss_mb: float
    batches_per_epoch: int
    batch_size: int
    threads: int
    device: str
    versions: dict[str, str]

    def to_dict(self) -> dict:
        return asdict(self)


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB.

    Linux's ``VmHWM`` is preferred: ``getrusage`` carries the parent's peak over
    into a child started with fork or vfork and exec, so a small training process
    launched by a large one would report the large one's memory.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # Linux reports KiB, macOS bytes.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


# Steps before timing starts: kernels and lazy state initialise on the first, and
# the allocator's heap takes about a dozen steps to reach the size it reuses
# (until then the node matrices page-fault in; on TikTok's released widths that
# is several thousand faults per step).
WARMUP_BATCHES = 12


def time_batches(trainer: Trainer, count: int) -> list[float]:
    """Seconds of ``count`` training steps (sampling, forward, backward, update)."""
    model = trainer.model
    model.train()
    times = []
    batches = trainer.batches()
    for _ in range(count):
        tick = time.perf_counter()
        try:
            users, pos, neg = next(batches)
        except StopIteration:
            batches = trainer.batches()
            users, pos, neg = next(batches)
        with trainer.autocast():
            loss = trainer.batch_loss(users, pos, neg)[0]
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        _synchronize(model.device)
        times.append(time.perf_counter() - tick)
    return times


def time_epochs(trainer: Trainer, count: int) -> list[float]:
    times = []
    for epoch in range(count):
        tick = time.perf_counter()
        trainer.train_epoch(epoch)
        _synchronize(trainer.model.device)
        times.append(time.perf_counter() - tick)
    return times


@torch.no_grad()
def rank_all_users(
    model: Recommender, dataset: Dataset, k: int = 20, chunk: int = 1024
) -> torch.Tensor:
    """(U, K) top-K unseen items of every user: embed, score, mask, top-K.

    Training items are masked to -inf per chunk; the full (U, I) score matrix is
    never held.
    """
    user_rep, item_rep = model.embed()
    item_t = item_rep.t().contiguous()
    train = dataset.matrix("train")
    tops = []
    for start in range(0, dataset.num_users, chunk):
        stop = min(start + chunk, dataset.num_users)
        scores = user_rep[start:stop] @ item_t  # (B, I)
        rows = train[start:stop].tocoo()
        rows_t = torch.as_tensor(rows.row, dtype=torch.long, device=scores.device)
        cols_t = torch.as_tensor(rows.col, dtype=torch.long, device=scores.device)
        scores[rows_t, cols_t] = float("-inf")
        tops.append(torch.topk(scores, k, dim=1).indices)
    return torch.cat(tops)


def run_bench(
    trainer: Trainer,
    dataset: Dataset,
    epochs: int = 3,
    batches: int = 20,
    k: int = 20,
    repeats: int = 5,
) -> BenchResult:
    """Warm up, then measure epochs, batches and full ranking; see ``BenchResult``."""
    model = trainer.model
    time_batches(trainer, WARMUP_BATCHES)
    batch_times = time_batches(trainer, batches)
    epoch_times = time_epochs(trainer, epochs)
    rank_all_users(model, dataset, k)
    rank_times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        rank_all_users(model, dataset, k)
        _synchronize(model.device)
        rank_times.append(time.perf_counter() - tick)
    return BenchResult(
        train_epoch_s=statistics.median(epoch_times),
        train_batch_s=statistics.median(batch_times),
        eval_full_s=statistics.median(rank_times),
        peak_rss_mb=peak_rss_mb(),
        batches_per_epoch=-(-len(dataset.train) // trainer.config.batch_size),
        batch_size=trainer.config.batch_size,
        threads=torch.get_num_threads(),
        device=str(model.device),
        versions=versions(),
    )


def versions() -> dict[str, str]:
    return {
        "mgat": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
