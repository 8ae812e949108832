"""Saved models refuse what they cannot trust, and say why."""

import json
import shutil

import pytest

from mgat.errors import CheckpointError
from mgat.saved import load_model


@pytest.fixture
def model_dir(mgat_run, tmp_path):
    return shutil.copytree(mgat_run / "model", tmp_path / "model")


def test_a_saved_model_loads_with_its_ids(model_dir):
    saved = load_model(model_dir)
    assert saved.manifest["format"] == "mgat-model"
    assert saved.user_index(["u3"]).tolist() == [3]
    with pytest.raises(KeyError, match="unknown user id"):
        saved.user_index(["nobody"])


def test_an_incompatible_format_version_is_refused(model_dir):
    manifest = json.loads((model_dir / "model.json").read_text())
    manifest["version"] = 99
    (model_dir / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="format version 99.*reads version 1"):
        load_model(model_dir)


def test_a_missing_file_is_named(model_dir):
    (model_dir / "data.safetensors").unlink()
    with pytest.raises(CheckpointError, match="data.safetensors is missing"):
        load_model(model_dir)


def test_a_directory_without_a_manifest_is_not_a_model(tmp_path):
    with pytest.raises(CheckpointError, match="no model.json"):
        load_model(tmp_path)
