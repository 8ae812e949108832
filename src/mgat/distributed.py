"""Data-parallel training over several processes with DistributedDataParallel.

Every process (rank) holds the whole model and the whole training graph; the
ranks split the training pairs. Each epoch every rank draws the same
permutation of the pairs from the shared seed. A step takes the next N * B
pairs of it (N ranks, B the batch size), draws their negatives from the same
shared generator on every rank, and rank r trains on pairs r, r + N, r + 2N...
of the step. DDP averages the gradients, and each rank's loss is weighted by
its share of the step, so one step equals a single-process step on all N * B
pairs: N processes with batch size B follow the same path as one process with
batch size N * B, up to the order of floating-point sums.

Only rank 0 evaluates, writes checkpoints and the run directory. It sends
the metrics to the other ranks, which wait for them in the broadcast, so
every rank takes the same early-stopping decision.

The processes find each other through the variables ``torchrun`` sets
(``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``); ``launch`` sets them for N processes on this machine.
The backend is gloo on CPU and NCCL on CUDA (one GPU per local rank).

TODO: every rank holds and propagates the whole graph, so memory per rank
does not fall with N and graphs larger than one device cannot train; graph
partitioning with an exchange of boundary states after each layer is the plan
(docs/distributed.md). TODO: rank 0 alone evaluates; splitting the users
across ranks and summing the metrics would divide evaluation time by N.

Shapes: E training pairs, B batch pairs per rank, N ranks.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mgat.data import Dataset
from mgat.errors import ConfigError, MgatError
from mgat.models.base import Recommender
from mgat.train import TrainConfig, Trainer

logger = logging.getLogger(__name__)

ENVIRONMENT = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class World:
    """This process's place in the process group.

    Attributes:
        rank: 0..size-1; rank 0 evaluates and writes.
        size: N, the number of processes.
        local_rank: the rank among the processes on this machine.
        local_size: the number of processes on this machine.
        device: where this rank trains.
    """

    rank: int
    size: int
    local_rank: int
    local_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextlib.contextmanager
def process_group(config: TrainConfig) -> Iterator[World | None]:
    """Join the process group that the environment describes, for one run.

    Yields None in a single process (``WORLD_SIZE`` unset or 1 and no group
    initialised by the caller). Otherwise joins the group with gloo (CPU) or
    NCCL (CUDA), yields this rank's ``World``, and leaves the group at the end;
    a group the caller initialised is used as it is and left open.

    Raises:
        ConfigError: for missing launcher variables or a CUDA device that is
            not there.
        MgatError: when the group cannot be formed (address, port, timeout).
    """
    owned = not dist.is_initialized()
    if owned and _environment_int("WORLD_SIZE", 1) <= 1:
        yield None
        return
    local_rank = _environment_int("LOCAL_RANK", 0)
    device = _rank_device(config.device, local_rank)
    if owned:
        _join(device)
    try:
        world = World(
            dist.get_rank(),
            dist.get_world_size(),
            local_rank,
            _environment_int("LOCAL_WORLD_SIZE", dist.get_world_size()),
            device,
        )
        _share_cores(world, config)
        yield world
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


class LossModule(nn.Module):
    """A recommender's training loss as ``forward``, so that DDP's hooks run.

    DDP prepares its gradient reduction in ``forward``; the models train
    through ``loss``, which this module's ``forward`` calls.
    """

    def __init__(self, model: Recommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, users, pos, neg, reg_weight: float) -> torch.Tensor:
        return self.model.loss(users, pos, neg, reg_weight).total


class DistributedTrainer(Trainer):
    """A ``Trainer`` whose steps are shared by the ranks of a process group.

    Args:
        model: the recommender, on ``world.device``, built from the same seed
            on every rank (DDP also copies rank 0's parameters at the start).
        dataset: the dataset, the same on every rank.
        config: the training configuration; ``batch_size`` is per rank.
        world: this rank's place in the group.
        on_epoch, progress, on_checkpoint: as for ``Trainer``; pass them on
            rank 0 only.
    """

    def __init__(
        self,
        model: Recommender,
        dataset: Dataset,
        config: TrainConfig,
        world: World,
        on_epoch: Callable | None = None,
        progress: Callable | None = None,
        on_checkpoint: Callable | None = None,
    ) -> None:
        super().__init__(model, dataset, config, on_epoch, progress, on_checkpoint)
        self.world = world
        self.world_size = world.size
        unused = unused_parameters(model, self.pairs, config.reg_weight)
        if unused:
            logger.debug("parameters without a gradient: %s", ", ".join(unused))
        self.wrapped = DistributedDataParallel(
            LossModule(model),
            device_ids=[model.device.index] if model.device.type == "cuda" else None,
            find_unused_parameters=bool(unused),
            **_no_buffer_sync(),
        )
        self.step_pairs, self.share = 0, 1.0

    def batches(self):
        """This rank's part of each step: pairs r, r + N, ... of N * B pairs."""
        order = torch.randperm(len(self.pairs), generator=self.generator)
        size, rank = self.world.size, self.world.rank
        step = self.config.batch_size * size
        for start in range(0, len(order), step):
            pairs = self.pairs[order[start : start + step]]
            neg = self.sampler.sample(pairs[:, 0])  # the same draws on every rank
            mine = torch.arange(rank, len(pairs), size)
            self.step_pairs, self.share = len(pairs), len(mine) * size / len(pairs)
            if len(mine) == 0:
                # Fewer pairs than ranks in the last step: this rank still runs
                # one pair, weighted 0, so that the gradient reduction completes.
                mine = torch.zeros(1, dtype=torch.long)
            users, pos = pairs[mine, 0], pairs[mine, 1]
            device = self.device
            yield users.to(device), pos.to(device), neg[mine].to(device)

    def num_batches(self) -> int:
        step = self.config.batch_size * self.world.size
        return -(-len(self.pairs) // step)

    def batch_loss(self, users, pos, neg) -> tuple[torch.Tensor, float, int]:
        """This rank's weighted loss, and the mean loss of the whole step.

        Rank r's mean loss is weighted by N * B_r / (N * B): DDP divides the
        summed gradients by N, which leaves the gradient of the step's mean.
        """
        loss = self.wrapped(users, pos, neg, self.config.reg_weight) * self.share
        total = loss.detach().clone()
        dist.all_reduce(total)  # the same sum on every rank, so all stop together
        return loss, total.item() / self.world.size, self.step_pairs

    def evaluate(self, split: str) -> dict[str, float]:
        """Rank 0 evaluates; every rank returns its metrics."""
        metrics = super().evaluate(split) if self.world.is_main else None
        return broadcast_json(metrics, self.world)


def unused_parameters(
    model: Recommender, pairs: torch.Tensor, reg_weight: float
) -> list[str]:
    """Names of the parameters that get no gradient from a training loss.

    DDP must be told when some parameters take no part in the loss. The probe
    runs on two training pairs with the random state saved and restored, so
    it does not shift the stream that training draws from (edge dropout).
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    users = pairs[:2, 0].to(model.device)
    items = pairs[:2, 1].to(model.device)
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        loss = model.loss(users, items, items.flip(0), reg_weight).total
        grads = torch.autograd.grad(
            loss, [p for _, p in named], allow_unused=True, materialize_grads=False
        )
    return [name for (name, _), grad in zip(named, grads, strict=True) if grad is None]


def _no_buffer_sync() -> dict:
    """DDP's option that stops copying buffers before every forward.

    The buffers (graph, features) are constants; newer torch renamed the option.
    """
    parameters = inspect.signature(DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def broadcast_json(value, world: World):
    """Rank 0's JSON value on every rank (JSON, so nothing is unpickled)."""
    device = world.device if dist.get_backend() == "nccl" else torch.device("cpu")
    payload = json.dumps(value).encode() if world.is_main else b""
    size = torch.tensor([len(payload)], dtype=torch.long, device=device)
    dist.broadcast(size, src=0)
    if world.is_main:
        buffer = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
    else:
        buffer = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    dist.broadcast(buffer, src=0)
    return value if world.is_main else json.loads(bytes(buffer.cpu().numpy()))


def launch(target: Callable, nproc: int, *args) -> None:
    """Run ``target(*args)`` in ``nproc`` new local processes forming one group.

    Each process gets the variables torchrun would set (a free loopback port
    as ``MASTER_PORT``), so whatever runs under torchrun runs here. When one
    process fails the others are stopped.

    Raises:
        MgatError: when a process exits with an error; its own message is
            printed by that process.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc: expected >= 1 processes, got {nproc}.")
    port = _free_port()
    try:
        mp.start_processes(
            _run_rank,
            args=(target, nproc, port, args),
            nprocs=nproc,
            start_method="spawn",
        )
    except mp.ProcessExitedException as err:
        raise MgatError(
            f"training process {err.error_index} of {nproc} exited with code "
            f"{err.exit_code}; its error is printed above."
        ) from None


def _run_rank(local_rank: int, target: Callable, nproc: int, port: int, args):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(local_rank),
        WORLD_SIZE=str(nproc),
        LOCAL_RANK=str(local_rank),
        LOCAL_WORLD_SIZE=str(nproc),
    )
    target(*args)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError as err:
        raise ConfigError(
            f"environment variable {name}={text!r}: expected an integer. It is set "
            "by torchrun or mgat train --nproc."
        ) from err


def _rank_device(name: str, local_rank: int) -> torch.device:
    """CPU, or the local rank's GPU unless the configuration names one."""
    wants_cuda = name.startswith("cuda") or (
        name == "auto" and torch.cuda.is_available()
    )
    if not wants_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} requested but CUDA is not available here. Use "
            "--device cpu (or auto)."
        )
    device = torch.device(name if ":" in name else f"cuda:{local_rank}")
    torch.cuda.set_device(device)
    return device


def _join(device: torch.device) -> None:
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE is set but {', '.join(missing)} is not. Launch with "
            "torchrun, or with mgat train --nproc N on one machine."
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    address = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    try:
        dist.init_process_group(backend)
    except (RuntimeError, ValueError) as err:
        raise MgatError(
            f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']} could not join "
            f"the {backend} process group at {address} ({err}). Check that every "
            "node uses the same master address and port and can reach it."
        ) from err
    logger.info(
        "rank %d of %d joined the %s group at %s",
        dist.get_rank(),
        dist.get_world_size(),
        backend,
        address,
    )


def _share_cores(world: World, config: TrainConfig) -> None:
    """Give each local CPU rank its share of the cores, unless threads is set."""
    if world.device.type != "cpu" or config.threads:
        return
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // world.local_size))
