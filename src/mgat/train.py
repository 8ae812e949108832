"""Training: BPR mini-batches, early stopping on validation, the best epoch kept.

One loop serves every model of the registry: it only uses the ``Recommender``
contract (``loss`` for a batch, ``embed`` for scoring).

Shapes: U users, I items, B batch pairs.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from mgat.data import Dataset, NegativeSampler
from mgat.errors import ConfigError, DivergedError
from mgat.evaluation import evaluate_full
from mgat.models.base import Recommender
from mgat.runtime import keep_freed_memory

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """How a model is trained and selected.

    Args:
        epochs: maximum passes over the training interactions.
        batch_size: B, (user, positive, negative) triples per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay on every parameter.
        reg_weight: L2 weight on the batch's free embeddings (see
            ``Recommender.regularized``).
        patience: evaluations without a better validation score before stopping.
        eval_every: evaluate on validation every this many epochs.
        select_metric: the validation metric that selects the best epoch.
        ks: cut-offs of the reported metrics.
        seed: seeds parameters, shuffling and negative sampling.
        device: ``cpu``, ``cuda``, ``cuda:1``... (``auto``: CUDA when present).
        eval_batch_size: users per chunk in full-ranking evaluation.
        budget_s: stop after this many seconds of training (None: no cap).
        threads: CPU threads for torch (None: leave torch's default).
        checkpoint_minutes: with a run directory, a checkpoint is written at the
            end of every epoch (None), or at the end of the first epoch after
            this many minutes since the last one. The last epoch always writes.
        negative_items: ``all`` items or only those ``seen`` in training are
            drawn as negatives (``NegativeSampler``); ``seen`` leaves the items
            without interactions to the content features.
        precision: ``fp32``, or ``bf16`` to run the training steps' dense
            products in bfloat16 under autocast (mixed precision: parameters,
            optimizer state, sparse kernels, the loss and every evaluation stay
            in float32). Fast where the hardware multiplies bfloat16 natively
            (CPUs with AMX or AVX512-BF16, recent GPUs); docs/performance.md.
        keep_freed_memory: make glibc's malloc keep freed memory for reuse
            rather than unmapping it (``mgat.runtime.keep_freed_memory``):
            without it, each step page-faults its (N, D) tensors in anew.
            Process-wide and lasting; False leaves malloc as it is. Faster,
            but the kept heap fragments: at 3 x 10^6 interactions an epoch
            took half the time and 1.8 times the memory (docs/performance.md).
    """

    epochs: int = 200
    batch_size: int = 2048
    lr: float = 1e-3
    weight_decay: float = 0.0
    reg_weight: float = 1e-4
    patience: int = 10
    eval_every: int = 1
    select_metric: str = "recall@20"
    ks: tuple[int, ...] = (10, 20, 50)
    seed: int = 0
    device: str = "cpu"
    eval_batch_size: int = 2048
    budget_s: float | None = None
    threads: int | None = None
    checkpoint_minutes: float | None = None
    negative_items: Literal["all", "seen"] = "all"
    precision: Literal["fp32", "bf16"] = "fp32"
    keep_freed_memory: bool = True

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name}: expected >= 1.")
        if self.lr <= 0:
            raise ConfigError(f"TrainConfig.lr: expected > 0, got {self.lr}.")
        if self.patience < 1:
            raise ConfigError(
                f"TrainConfig.patience: expected >= 1, got {self.patience}."
            )
        metric, _, k = self.select_metric.partition("@")
        if not k.isdigit() or int(k) not in self.ks:
            raise ConfigError(
                f"TrainConfig.select_metric: expected <metric>@<k> with k in ks "
                f"{list(self.ks)}, got {self.select_metric!r}."
            )
        if self.negative_items not in ("all", "seen"):
            raise ConfigError(
                "TrainConfig.negative_items: expected 'all' or 'seen', got "
                f"{self.negative_items!r}."
            )
        if self.checkpoint_minutes is not None and self.checkpoint_minutes < 0:
            raise ConfigError(
                "TrainConfig.checkpoint_minutes: expected >= 0 or None, got "
                f"{self.checkpoint_minutes}."
            )


@dataclass
class EpochRecord:
    """One row of the training history."""

    epoch: int
    loss: float
    epoch_s: float
    elapsed_s: float
    valid: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainState:
    """Where the fit loop stands after an epoch: enough to continue it later.

    ``mgat.checkpoint`` writes it to disk with the model, optimizer and random
    states, and reads it back for ``Trainer.fit(state)``.
    """

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] | None = None
    stale: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped_by: str | None = None


@dataclass
class TrainResult:
    """What ``fit`` returns: the best epoch, its metrics and the history."""

    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]
    history: list[EpochRecord]
    train_s: float
    stopped_by: str


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} requested but CUDA is not available here. Use "
            "--device cpu (or auto)."
        )
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_targets(dataset: Dataset, split: str):
    """The target matrix and the matrices to mask for evaluating ``split``."""
    exclude = [dataset.matrix("train")]
    if split == "test":
        exclude.append(dataset.matrix("valid"))
    return dataset.matrix(split), exclude


def evaluate_model(
    model: Recommender,
    dataset: Dataset,
    split: str,
    ks=(10, 20, 50),
    batch_size: int = 2048,
    targets=None,
    items: np.ndarray | None = None,
) -> dict[str, float]:
    """Full-ranking metrics of ``model`` on ``split`` (``valid`` or ``test``).

    Training items are masked, and validation items too when ``split`` is test.
    ``targets`` may replace the split's target matrix (e.g. cold items only).
    ``items`` restricts the candidates to those item indices: with the cold
    items, it asks which of the items nobody has interacted with yet a user
    will pick, the question content-based cold start answers.
    """
    split_matrix, exclude = split_targets(dataset, split)
    matrix = split_matrix if targets is None else targets
    user_rep, item_rep = model.embed()
    if items is not None:
        columns = torch.as_tensor(items, dtype=torch.long, device=item_rep.device)
        item_rep = item_rep[columns]
        matrix = matrix.tocsc()[:, items].tocsr()
        exclude = [m.tocsc()[:, items].tocsr() for m in exclude]
    item_t = item_rep.t().contiguous()

    def score(users: torch.Tensor) -> torch.Tensor:
        return user_rep[users.to(user_rep.device)] @ item_t

    return evaluate_full(score, matrix, exclude, ks=ks, batch_size=batch_size)


class Trainer:
    """Trains one model on one dataset with BPR and early stopping.

    Args:
        model: any registered recommender, already on its device.
        dataset: the dataset whose train split built the model's graph.
        config: the training configuration.
        on_epoch: called with each ``EpochRecord`` as it is completed.
        progress: a factory like ``tqdm`` for a per-epoch progress bar, or None.
        on_checkpoint: called with the trainer and its ``TrainState`` at the end
            of every epoch, after ``on_epoch`` (see ``mgat.checkpoint``).
    """

    def __init__(
        self,
        model: Recommender,
        dataset: Dataset,
        config: TrainConfig,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        progress: Callable | None = None,
        on_checkpoint: Callable[[Trainer, TrainState], None] | None = None,
    ) -> None:
        self.model = model
        self.dataset = dataset
        self.config = config
        self.on_epoch = on_epoch
        self.progress = progress
        self.on_checkpoint = on_checkpoint
        self.device = model.device
        if config.keep_freed_memory:
            keep_freed_memory()
        self.generator = torch.Generator().manual_seed(config.seed)
        self.sampler = NegativeSampler(
            dataset.train, dataset.num_items, self.generator, config.negative_items
        )
        self.pairs = torch.as_tensor(dataset.train, dtype=torch.long)
        # The fused kernel updates all parameters in one pass (CPU and CUDA).
        self.optimizer = torch.optim.Adam(
            model.parameter_groups(config.lr),
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )

    def batches(self):
        """Shuffled (users, positives, negatives) batches of one epoch."""
        order = torch.randperm(len(self.pairs), generator=self.generator)
        for start in range(0, len(order), self.config.batch_size):
            pairs = self.pairs[order[start : start + self.config.batch_size]]
            users, pos = pairs[:, 0], pairs[:, 1]
            neg = self.sampler.sample(users)
            yield users.to(self.device), pos.to(self.device), neg.to(self.device)

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training pairs; returns the mean loss."""
        self.model.train()
        total, count = 0.0, 0
        batches = self.batches()
        if self.progress:
            total_batches = self.num_batches()
            batches = self.progress(batches, total=total_batches, desc=f"epoch {epoch}")
        for batch, (users, pos, neg) in enumerate(batches):
            with self.autocast():
                loss, value, size = self.batch_loss(users, pos, neg)
            if not math.isfinite(value):
                raise DivergedError(
                    f"the loss became {value} at epoch {epoch}, batch {batch}. Lower "
                    f"the learning rate (lr={self.config.lr}) or the regularisation."
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += value * size
            count += size
        return total / max(count, 1)

    def autocast(self) -> torch.autocast:
        """The mixed-precision context of a training step (``precision``)."""
        return torch.autocast(
            self.device.type,
            dtype=torch.bfloat16,
            enabled=self.config.precision == "bf16",
        )

    def num_batches(self) -> int:
        return math.ceil(len(self.pairs) / self.config.batch_size)

    def batch_loss(self, users, pos, neg) -> tuple[torch.Tensor, float, int]:
        """The loss to minimise on a batch, its value, and the pairs it averages."""
        loss = self.model.loss(users, pos, neg, self.config.reg_weight).total
        return loss, loss.item(), len(users)

    def fit(self, state: TrainState | None = None) -> TrainResult:
        """Train until ``epochs``, ``patience`` or ``budget_s`` runs out.

        Args:
            state: where an interrupted fit stopped, as ``mgat.checkpoint`` reads
                it back (the trainer's model, optimizer and generator must be
                restored with it); None starts at epoch 1.
        """
        cfg = self.config
        state = state or TrainState()
        if state.epoch and state.stopped_by is None:
            state.stopped_by = self._stop_reason(state)
        start = time.perf_counter() - state.elapsed_s

        while state.stopped_by is None:
            epoch = state.epoch + 1
            tick = time.perf_counter()
            loss = self.train_epoch(epoch)
            record = EpochRecord(epoch, loss, time.perf_counter() - tick, 0.0)
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                record.valid = self.evaluate("valid")
                self._select(state, record)
            record.elapsed_s = time.perf_counter() - start
            state.epoch, state.elapsed_s = epoch, record.elapsed_s
            state.history.append(record)
            state.stopped_by = self._stop_reason(state)
            if self.on_epoch:
                self.on_epoch(record)
            if self.on_checkpoint:
                self.on_checkpoint(self, state)

        train_s = time.perf_counter() - start
        if state.best_state is not None:
            self.model.load_state_dict(state.best_state)
        test = self.evaluate("test")
        logger.info(
            "best epoch %d: valid %s %.4f, test %s %.4f (stopped by %s, %.1fs)",
            state.best_epoch, cfg.select_metric, state.best_score,
            cfg.select_metric, test[cfg.select_metric], state.stopped_by, train_s,
        )  # fmt: skip
        return TrainResult(
            state.best_epoch,
            state.best_valid,
            test,
            state.history,
            train_s,
            state.stopped_by,
        )

    def _select(self, state: TrainState, record: EpochRecord) -> None:
        """Keep the model of the best validation score; count evaluations since."""
        metric = self.config.select_metric
        score = record.valid[metric]
        logger.info(
            "epoch %d loss %.4f valid %s %.4f (%.2fs/epoch)",
            record.epoch, record.loss, metric, score, record.epoch_s,
        )  # fmt: skip
        if score > state.best_score:
            state.best_score, state.best_epoch, state.stale = score, record.epoch, 0
            state.best_valid = record.valid
            state.best_state = copy.deepcopy(self.model.state_dict())
        else:
            state.stale += 1

    def _stop_reason(self, state: TrainState) -> str | None:
        cfg = self.config
        if state.stale >= cfg.patience:
            return "patience"
        if cfg.budget_s is not None and state.elapsed_s >= cfg.budget_s:
            return "budget"
        if state.epoch >= cfg.epochs:
            return "epochs"
        return None

    def evaluate(self, split: str) -> dict[str, float]:
        return evaluate_model(
            self.model, self.dataset, split, self.config.ks, self.config.eval_batch_size
        )
