"""Saved models: a directory that loads without executing code.

Layout of a saved model directory::

    model.json          format name and version, model name and config, sizes,
                        modality names and the sha256 of every other file
    weights.safetensors the model's parameters and persistent buffers
    data.safetensors    what rebuilds the model's graph and inputs: the training
                        pairs and each modality's item features
    users.txt           original user ids, one per line, in index order
    items.txt           original item ids, one per line, in index order

Nothing here uses pickle: safetensors and JSON hold only tensors and data. Every
file is checked against its recorded checksum before anything is built from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mgat import config as configuration
from mgat.errors import CheckpointError, UnknownIdError
from mgat.models import ModelData, Recommender, model_class
from mgat.versioned import read_versioned_json

FORMAT_NAME = "mgat-model"
FORMAT_VERSION = 1
FILES = ("weights.safetensors", "data.safetensors", "users.txt", "items.txt")


@dataclass
class SavedModel:
    """A loaded model with its id maps.

    Attributes:
        model: the recommender, in eval mode.
        user_ids: (U,) original user ids.
        item_ids: (I,) original item ids.
        train: (E, 2) training (user, item) index pairs.
        features: modality name to (I, F_m) item features.
        manifest: the parsed model.json.
    """

    model: Recommender
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: np.ndarray
    features: dict[str, np.ndarray]
    manifest: dict

    @cached_property
    def _user_positions(self) -> dict[str, int]:
        return {value: i for i, value in enumerate(self.user_ids)}

    @cached_property
    def _item_positions(self) -> dict[str, int]:
        return {value: i for i, value in enumerate(self.item_ids)}

    def user_index(self, ids) -> np.ndarray:
        """Indices of original user ids; ``UnknownIdError`` for unknown ones."""
        return _lookup(self._user_positions, ids, "user")

    def item_index(self, ids) -> np.ndarray:
        """Indices of original item ids; ``UnknownIdError`` for unknown ones."""
        return _lookup(self._item_positions, ids, "item")


def save_model(
    directory: str | Path,
    model: Recommender,
    data: ModelData,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    extra: dict | None = None,
) -> Path:
    """Write ``model`` as a saved model directory, atomically (temp dir, rename)."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_files(staging, model, data, user_ids, item_ids, extra or {})
        if target.exists():
            _replace_dir(target, staging)
        else:
            os.replace(staging, target)
    except BaseException:
        _remove_tree(staging)
        raise
    return target


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> SavedModel:
    """Load a saved model directory after checking its format and checksums.

    Raises:
        CheckpointError: when a file is missing, truncated or altered, or the
            format version is not one this library reads.
    """
    path = Path(directory)
    manifest = _read_manifest(path)
    for name in FILES:
        _verify(path / name, manifest["files"].get(name))
    try:
        weights = load_file(path / "weights.safetensors")
        arrays = load_file(path / "data.safetensors")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read tensors ({err}).") from err

    features = {
        name[len("feature.") :]: t.numpy()
        for name, t in arrays.items()
        if name.startswith("feature.")
    }
    features = {m: features[m] for m in manifest["modalities"]}
    data = ModelData(
        manifest["num_users"], manifest["num_items"], arrays["train"].numpy(), features
    )
    cls = model_class(manifest["model"])
    model = cls(data, configuration.build(cls.config_class, manifest["config"]))
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: the weights do not fit a {manifest['model']} model with the "
            f"saved config ({err}). The directory is inconsistent: retrain or "
            "restore it."
        ) from err
    model.to(device).eval()
    return SavedModel(
        model,
        _read_ids(path / "users.txt"),
        _read_ids(path / "items.txt"),
        data.train,
        features,
        manifest,
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_files(staging, model, data, user_ids, item_ids, extra) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, staging / "weights.safetensors")
    arrays = {"train": torch.as_tensor(np.asarray(data.train), dtype=torch.long)}
    for name, array in data.features.items():
        arrays[f"feature.{name}"] = torch.as_tensor(array, dtype=torch.float32)
    save_file(arrays, staging / "data.safetensors")
    (staging / "users.txt").write_text("\n".join(map(str, user_ids)) + "\n")
    (staging / "items.txt").write_text("\n".join(map(str, item_ids)) + "\n")
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": model.name,
        "config": configuration.to_dict(model.config),
        "num_users": data.num_users,
        "num_items": data.num_items,
        "modalities": list(data.features),
        "files": {name: sha256(staging / name) for name in FILES},
        **extra,
    }
    (staging / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name in (*FILES, "model.json"):
        _fsync(staging / name)


def _read_manifest(path: Path) -> dict:
    manifest_path = path / "model.json"
    if not manifest_path.exists():
        raise CheckpointError(
            f"{path}: no model.json, so this is not a saved mgat model (a run "
            "directory keeps it in its model/ folder). Check the path."
        )
    manifest = read_versioned_json(
        manifest_path,
        FORMAT_NAME,
        FORMAT_VERSION,
        "mgat model manifest",
        "Restore it from a copy or retrain.",
        "Use the mgat release that saved it, or retrain.",
    )
    if not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{manifest_path}: the checksum list is missing.")
    return manifest


def _verify(path: Path, expected: str | None) -> None:
    if not path.exists():
        raise CheckpointError(
            f"{path} is missing from the saved model. Restore the whole directory."
        )
    if expected is None or sha256(path) != expected:
        raise CheckpointError(
            f"{path}: checksum mismatch with model.json; the file was truncated or "
            "changed after saving. Restore it from a copy or retrain."
        )


def _read_ids(path: Path) -> np.ndarray:
    return np.array([s for s in path.read_text().splitlines() if s], dtype=str)


def _lookup(index: dict[str, int], ids, kind: str) -> np.ndarray:
    ids = [str(i) for i in np.atleast_1d(ids)]
    missing = [i for i in ids if i not in index]
    if missing:
        raise UnknownIdError(
            f"unknown {kind} id(s) {missing[:5]}: the model knows {len(index)} "
            f"{kind}s. Use ids as listed in the model's {kind}s.txt."
        )
    return np.array([index[i] for i in ids], dtype=np.int64)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _replace_dir(target: Path, staging: Path) -> None:
    old = target.with_name(f".{target.name}.old")
    _remove_tree(old)
    os.replace(target, old)
    os.replace(staging, target)
    _remove_tree(old)


def _remove_tree(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            _remove_tree(child) if child.is_dir() else child.unlink()
        path.rmdir()
