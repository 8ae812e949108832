"""Checkpoints: everything a training run needs to continue after it stops.

A run directory's ``checkpoint/`` folder holds::

    state.json                      format and version, the epoch, the fit loop's
                                    counters and history, the optimizer's
                                    hyperparameters, the scalar parts of the
                                    random states, and the name and sha256 of
                                    the tensor file below
    tensors-<epoch>-<tag>.safetensors
                                    the model, the best epoch's model, the
                                    optimizer's moments and the random states
                                    (torch and generator states as uint8
                                    tensors, numpy and Python as int64 words)

Writing is atomic: each file is written to a temporary name in the same
folder, flushed to disk and renamed over its target. The tensor file is
written first under a new name and ``state.json`` last, so ``state.json``
always names a complete tensor file; older tensor files are removed after it.
A crash at any moment leaves the previous checkpoint readable.

Nothing is unpickled: tensors come from safetensors and the rest from JSON,
and the tensor file is checked against its recorded sha256 before use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from mgat.errors import CheckpointError, DivergedError, StorageError
from mgat.train import EpochRecord, TrainState
from mgat.versioned import read_versioned_json

if TYPE_CHECKING:
    from mgat.train import Trainer

logger = logging.getLogger(__name__)

FORMAT_NAME = "mgat-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
# What a run directory may hold; a fresh run removes these and nothing else.
RUN_FILES = ("config.json", "metrics.json", "history.csv", "history.png")
RUN_FOLDERS = ("model", CHECKPOINT_DIR)
STATE_KEYS = ("epoch", "tensors", "model", "data", "train", "optimizer", "random")


class Checkpointer:
    """The ``on_checkpoint`` hook of a ``Trainer``: writes at the end of epochs.

    Args:
        run_directory: the run directory; checkpoints go to its ``checkpoint/``.
        minutes: write only when this many minutes have passed since the last
            checkpoint (None or 0: every epoch). The last epoch always writes.
    """

    def __init__(self, run_directory: str | Path, minutes: float | None = None):
        self.directory = Path(run_directory) / CHECKPOINT_DIR
        self.minutes = minutes
        self.last_write = time.monotonic()

    def __call__(self, trainer: Trainer, state: TrainState) -> None:
        due = not self.minutes or (
            time.monotonic() - self.last_write >= 60 * self.minutes
        )
        if due or state.stopped_by is not None:
            _check_finite(trainer, state.epoch)
            save_checkpoint(self.directory, trainer, state)
            self.last_write = time.monotonic()


def save_checkpoint(directory: str | Path, trainer: Trainer, state: TrainState) -> Path:
    """Write the trainer's state after ``state.epoch`` into ``directory``.

    Raises:
        StorageError: when the folder cannot be written (permission, read-only
            or full disk); the previous checkpoint is then still intact.
    """
    directory = Path(directory)
    tensors, scalars = _collect(trainer, state)
    payload = save_tensors(tensors)
    name = f"tensors-{state.epoch:06d}-{secrets.token_hex(4)}.safetensors"
    scalars["tensors"] = {
        "file": name,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }

    hint = (
        "The previous checkpoint is intact; fix this, then continue with "
        f"`mgat train --resume {directory.parent}`."
    )
    with storage_errors(directory, f"write the epoch {state.epoch} checkpoint", hint):
        directory.mkdir(parents=True, exist_ok=True)
        write_atomically(directory / name, payload)
        text = json.dumps(scalars, indent=1) + "\n"
        write_atomically(directory / STATE_FILE, text.encode())
    # Older tensor files, and temporary files a crash may have left behind.
    for old in [*directory.glob("tensors-*.safetensors"), *directory.glob(".*.tmp")]:
        if old.name != name:
            old.unlink(missing_ok=True)
    logger.debug("checkpoint of epoch %d written to %s", state.epoch, directory)
    return directory


def load_checkpoint(directory: str | Path, trainer: Trainer) -> TrainState | None:
    """Restore ``trainer`` from the checkpoint in ``directory``; its loop state.

    Restores the model, the optimizer, the trainer's generator and the global
    torch, numpy and Python random states. Returns None when ``directory``
    holds no checkpoint.

    Raises:
        CheckpointError: when the checkpoint is corrupt, truncated, of another
            format version, or does not fit the trainer's model or dataset.
    """
    directory = Path(directory)
    scalars = _read_state(directory)
    if scalars is None:
        return None
    tensors = _read_tensors(directory, scalars["tensors"])
    _check_fits(directory, scalars, trainer)

    _restore_model(directory, trainer, _prefixed(tensors, "model."))
    _restore_optimizer(directory, trainer, scalars["optimizer"], tensors)
    _restore_random(scalars["random"], tensors, trainer.generator)
    best = _prefixed(tensors, "best.")
    return _train_state(scalars["epoch"], scalars["train"], best)


def latest_epoch(run_directory: str | Path) -> int | None:
    """The epoch of the run directory's checkpoint, or None without a readable one."""
    path = Path(run_directory) / CHECKPOINT_DIR / STATE_FILE
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare_run_directory(directory: str | Path, fresh: bool) -> Path:
    """Create ``directory`` (checking that it is writable); ``fresh`` clears it.

    A fresh run removes what an earlier run wrote there (``RUN_FILES`` and
    ``RUN_FOLDERS``, the checkpoint included) and leaves other files alone.

    Raises:
        StorageError: when the directory cannot be created or written.
    """
    directory = Path(directory)
    hint = "Choose another --out, or fix the directory's permissions."
    with storage_errors(directory, "create the run directory", hint):
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass  # creating a file fails early on a read-only directory
        if fresh:
            for name in RUN_FILES:
                (directory / name).unlink(missing_ok=True)
            for name in RUN_FOLDERS:
                shutil.rmtree(directory / name, ignore_errors=True)
    return directory


def _check_finite(trainer: Trainer, epoch: int) -> None:
    """Refuse to replace a good checkpoint with non-finite parameters."""
    for name, parameter in trainer.model.named_parameters():
        if not torch.isfinite(parameter).all():
            raise DivergedError(
                f"parameter {name} holds NaN or infinite values after epoch {epoch}. "
                f"Lower the learning rate (lr={trainer.config.lr}) or the "
                "regularisation."
            )


# ------------------------------------------------------------------- storage
def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a synced temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # os.open applies the umask, as a plain open() would (mkstemp gives 0600).
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


@contextlib.contextmanager
def storage_errors(path: str | Path, action: str, hint: str = "") -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a ``StorageError``.

    The message names the path, the action and the cause in words (disk full,
    permission denied, read-only file system, a file in the way), then ``hint``.
    """
    try:
        yield
    except OSError as err:
        cause = _CAUSES.get(err.errno, err.strerror or str(err))
        where = err.filename or path
        raise StorageError(
            f"cannot {action} at {where}: {cause}. {hint}".strip()
        ) from err


_CAUSES = {
    errno.ENOSPC: "no space left on the device; free some space",
    errno.EDQUOT: "the disk quota is exhausted; free some space",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EEXIST: "a file is in the way of the directory",
    errno.EISDIR: "a directory is in the way of the file",
    errno.EFBIG: "the file exceeds the allowed file size",
}


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot sync)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


# ---------------------------------------------------------------- collecting
def _collect(trainer: Trainer, state: TrainState) -> tuple[dict, dict]:
    """The checkpoint's tensors (by name) and its JSON part."""
    tensors = _with_prefix("model.", trainer.model.state_dict())
    tensors.update(_with_prefix("best.", state.best_state or {}))
    optimizer, optimizer_tensors = _optimizer_parts(trainer.optimizer)
    tensors.update(optimizer_tensors)
    random_scalars, random_tensors = _random_parts(trainer.generator)
    tensors.update(random_tensors)
    scalars = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "epoch": state.epoch,
        "model": trainer.model.name,
        "data": _data_fingerprint(trainer.dataset),
        "world_size": getattr(trainer, "world_size", 1),
        "train": _train_scalars(state),
        "optimizer": optimizer,
        "random": random_scalars,
    }
    return tensors, scalars


def _with_prefix(prefix: str, tensors: dict[str, torch.Tensor]) -> dict:
    # Copies: safetensors refuses tensors that share memory, and the live
    # parameters must not change while the file is written.
    return {
        f"{prefix}{name}": tensor.detach().to("cpu", copy=True).contiguous()
        for name, tensor in tensors.items()
    }


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Hyperparameters and scalar state as JSON; moments as tensors."""
    saved = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in saved["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().clone()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [dict(group) for group in saved["param_groups"]]
    return {"param_groups": groups, "state": scalars}, tensors


def _random_parts(generator: torch.Generator) -> tuple[dict, dict]:
    """The trainer's generator and the global random states."""
    tensors = {
        "random.generator": generator.get_state(),
        "random.torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, value in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"random.cuda.{index}"] = value
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    tensors["random.numpy"] = torch.as_tensor(keys.astype(np.int64))
    version, words, gauss_next = random.getstate()
    tensors["random.python"] = torch.tensor(words, dtype=torch.int64)
    scalars = {
        "numpy": [kind, int(position), int(has_gauss), float(gauss)],
        "python": [version, gauss_next],
    }
    return scalars, tensors


def _train_scalars(state: TrainState) -> dict:
    best = state.best_score
    return {
        "best_score": None if best == -float("inf") else best,
        "best_epoch": state.best_epoch,
        "best_valid": state.best_valid,
        "stale": state.stale,
        "elapsed_s": state.elapsed_s,
        "stopped_by": state.stopped_by,
        "history": [dataclasses.asdict(record) for record in state.history],
    }


def _data_fingerprint(dataset) -> dict:
    pairs = np.ascontiguousarray(dataset.train, dtype=np.int64)
    return {
        "num_users": int(dataset.num_users),
        "num_items": int(dataset.num_items),
        "train_sha256": hashlib.sha256(pairs.tobytes()).hexdigest(),
    }


# ------------------------------------------------------------------- reading
def _read_state(directory: Path) -> dict | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    scalars = read_versioned_json(
        path,
        FORMAT_NAME,
        FORMAT_VERSION,
        "mgat checkpoint",
        "Restore it from a copy, or start the run again with --overwrite.",
        "Resume with the mgat release that wrote it.",
    )
    missing = [key for key in STATE_KEYS if key not in scalars]
    if missing:
        raise CheckpointError(
            f"{path}: incomplete checkpoint, {', '.join(missing)} missing. Restore "
            "it from a copy, or start the run again with --overwrite."
        )
    return scalars


def _read_tensors(directory: Path, entry: dict) -> dict[str, torch.Tensor]:
    path = directory / entry["file"]
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint's tensors ({err.strerror}). Restore "
            "the checkpoint folder, or start the run again with --overwrite."
        ) from err
    if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
        raise CheckpointError(
            f"{path}: checksum mismatch with {STATE_FILE}; the file was truncated "
            "or changed after writing. Restore it, or start again with --overwrite."
        )
    try:
        return load_tensors(payload)
    except SafetensorError as err:
        raise CheckpointError(f"{path}: cannot read the tensors ({err}).") from err


def _check_fits(directory: Path, scalars: dict, trainer: Trainer) -> None:
    if scalars["model"] != trainer.model.name:
        raise CheckpointError(
            f"{directory}: the checkpoint is of model {scalars['model']!r}, not "
            f"{trainer.model.name!r}. Resume with the run's own config.json."
        )
    if scalars["data"] != _data_fingerprint(trainer.dataset):
        raise CheckpointError(
            f"{directory}: the dataset's training interactions differ from those "
            "the checkpoint was trained on. Resume with the same dataset, or start "
            "a new run."
        )
    world_size = getattr(trainer, "world_size", 1)
    if scalars.get("world_size", 1) != world_size:
        logger.warning(
            "the checkpoint was written by %d processes and resumes on %d: each "
            "step now covers a different number of pairs, so the result will "
            "differ from an uninterrupted run",
            scalars.get("world_size", 1),
            world_size,
        )


def _restore_model(directory: Path, trainer: Trainer, weights: dict) -> None:
    try:
        trainer.model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(
            f"{directory}: the checkpoint's weights do not fit the model built from "
            f"the run's config ({err}). Was config.json edited? Restore it."
        ) from err


def _restore_optimizer(
    directory: Path, trainer: Trainer, saved: dict, tensors: dict
) -> None:
    state: dict[int, dict] = {}
    for index, entries in saved["state"].items():
        state.setdefault(int(index), {}).update(entries)
    for name, value in _prefixed(tensors, "optimizer.").items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = value
    # Hyperparameters come from the optimizer the trainer built from the run's
    # configuration (a resumed run may lower the learning rate, and models set
    # per-group rates); only the moments and step counts come from the file.
    groups = trainer.optimizer.state_dict()["param_groups"]
    sizes = [len(group["params"]) for group in saved["param_groups"]]
    if sizes != [len(group["params"]) for group in groups]:
        raise CheckpointError(
            f"{directory}: the checkpoint's optimizer has parameter groups of "
            f"sizes {sizes}, the model's optimizer "
            f"{[len(group['params']) for group in groups]}. Resume with the "
            "mgat version and configuration that wrote it."
        )
    try:
        trainer.optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{directory}: the optimizer state does not fit the model ({err})."
        ) from err


def _restore_random(scalars: dict, tensors: dict, generator: torch.Generator) -> None:
    generator.set_state(tensors["random.generator"])
    torch.set_rng_state(tensors["random.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("random.cuda.")]
    if cuda and torch.cuda.is_available():
        for index, value in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(value, index)
    kind, position, has_gauss, gauss = scalars["numpy"]
    keys = tensors["random.numpy"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, position, has_gauss, gauss))
    version, gauss_next = scalars["python"]
    words = tuple(int(w) for w in tensors["random.python"].tolist())
    random.setstate((version, words, gauss_next))


def _train_state(epoch: int, scalars: dict, best: dict) -> TrainState:
    score = scalars["best_score"]
    return TrainState(
        epoch=epoch,
        best_score=-float("inf") if score is None else score,
        best_epoch=scalars["best_epoch"],
        best_valid=scalars["best_valid"],
        best_state=best or None,
        stale=scalars["stale"],
        history=[EpochRecord(**record) for record in scalars["history"]],
        elapsed_s=scalars["elapsed_s"],
        stopped_by=scalars["stopped_by"],
    )
