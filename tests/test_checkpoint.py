"""Checkpoints: exact resume, integrity, divergence and storage failures."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mgat.checkpoint import (
    CHECKPOINT_DIR,
    STATE_FILE,
    latest_epoch,
    prepare_run_directory,
)
from mgat.cli import main
from mgat.errors import CheckpointError, ConfigError, DivergedError, StorageError
from mgat.runs import fit, resume

# Edge dropout draws from torch's global generator, so an exact resume needs
# that state as well as the trainer's own generator.
TINY = {
    "model": "mgat",
    "embed_dim": 8,
    "latent_dim": 8,
    "latent_dims": {},
    "edge_dropout": 0.2,
    "epochs": 5,
    "batch_size": 64,
    "lr": 0.01,
    "patience": 100,
    "threads": 1,
    "seed": 3,
}


@pytest.fixture(scope="module")
def dataset_dir(clusters, tmp_path_factory) -> Path:
    """The planted clusters as a dataset directory, so that a run can reload it."""
    return clusters.dataset.save(tmp_path_factory.mktemp("data") / "clusters")


@pytest.fixture(scope="module")
def uninterrupted(dataset_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "whole"
    fit(str(dataset_dir), out=out, **TINY)
    return out


def interrupt_at(epoch: int):
    """A progress factory that interrupts training as ``epoch`` starts (Ctrl-C)."""
    calls = []

    def progress(batches, **options):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return batches

    return progress


def assert_same_run(first: Path, second: Path) -> None:
    """Equal best model, metrics, losses, and last-epoch parameters and moments."""
    for tensors in (saved_model, last_checkpoint):
        expected, found = tensors(first), tensors(second)
        assert expected.keys() == found.keys()
        for name, tensor in expected.items():
            assert torch.equal(tensor, found[name]), name

    metrics = [json.loads((d / "metrics.json").read_text()) for d in (first, second)]
    for key in ("best_epoch", "stopped_by", "valid", "test"):
        assert metrics[0][key] == metrics[1][key], key
    assert losses(first) == losses(second)


def saved_model(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "weights.safetensors")


def last_checkpoint(run: Path) -> dict[str, torch.Tensor]:
    """The model after the last epoch and Adam's moments, from the checkpoint."""
    folder = run / CHECKPOINT_DIR
    state = json.loads((folder / STATE_FILE).read_text())
    tensors = load_file(folder / state["tensors"]["file"])
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optimizer."))}


def losses(run: Path) -> list[str]:
    with open(run / "history.csv", newline="") as handle:
        return [row["loss"] for row in csv.DictReader(handle)]


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(
    dataset_dir, uninterrupted, tmp_path
):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(str(dataset_dir), out=out, progress=interrupt_at(3), **TINY)
    assert latest_epoch(out) == 2
    assert not (out / "metrics.json").exists()

    resume(out)
    assert_same_run(uninterrupted, out)


def test_a_killed_process_resumes_to_the_same_result(
    dataset_dir, uninterrupted, tmp_path
):
    out = tmp_path / "run"
    options = [f"{k}={v}" for k, v in TINY.items() if k not in ("model", "latent_dims")]
    command = [sys.executable, "-m", "mgat", "-q", "train", "--dataset"]
    command += [str(dataset_dir), "--out", str(out), "latent_dims=", *options]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while (latest_epoch(out) or 0) < 2 and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within two minutes"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "training ended before the kill"
    assert not (out / "metrics.json").exists()

    main(["-q", "train", "--resume", str(out)])
    assert_same_run(uninterrupted, out)


def test_a_finished_run_resumes_to_itself(uninterrupted, tmp_path):
    before = json.loads((uninterrupted / "metrics.json").read_text())
    resume(uninterrupted)
    after = json.loads((uninterrupted / "metrics.json").read_text())
    assert before["test"] == after["test"]
    assert before["best_epoch"] == after["best_epoch"]


def test_a_crash_while_writing_leaves_the_previous_checkpoint(
    dataset_dir, uninterrupted, tmp_path
):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(str(dataset_dir), out=out, progress=interrupt_at(3), **TINY)
    # What a crash between the steps of the next write would leave behind: a
    # newer tensor file that state.json does not name, and a temporary file.
    folder = out / CHECKPOINT_DIR
    (folder / "tensors-000003-00000000.safetensors").write_bytes(b"\0" * 100)
    (folder / f".{STATE_FILE}.0123456789ab.tmp").write_text('{"epoch": 3')

    resume(out)
    assert_same_run(uninterrupted, out)
    names = sorted(path.name for path in folder.iterdir())
    assert len(names) == 2 and names[0] == STATE_FILE  # the leftovers are gone


def test_a_truncated_checkpoint_is_refused(dataset_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(str(dataset_dir), out=out, progress=interrupt_at(2), **TINY)
    [tensors] = (out / CHECKPOINT_DIR).glob("tensors-*.safetensors")
    tensors.write_bytes(tensors.read_bytes()[:-10])

    with pytest.raises(CheckpointError, match="checksum mismatch"):
        resume(out)


def test_a_corrupt_state_file_is_refused(dataset_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(str(dataset_dir), out=out, progress=interrupt_at(2), **TINY)
    state = out / CHECKPOINT_DIR / STATE_FILE
    state.write_text(state.read_text()[:50])

    with pytest.raises(CheckpointError, match="not valid JSON"):
        resume(out)


def test_checkpoint_minutes_skips_intermediate_epochs(dataset_dir, tmp_path):
    out = tmp_path / "run"
    options = {**TINY, "checkpoint_minutes": 60}
    with pytest.raises(KeyboardInterrupt):
        fit(str(dataset_dir), out=out, progress=interrupt_at(3), **options)
    assert latest_epoch(out) is None

    fit(str(dataset_dir), out=out, **{**options, "epochs": 2})
    assert latest_epoch(out) == 2  # the last epoch always writes


def test_divergence_names_the_last_good_checkpoint(dataset_dir, tmp_path):
    # One step per epoch: epoch 1 ends with finite parameters, and the huge
    # step it took makes every score overflow in epoch 2.
    out = tmp_path / "run"
    options = {**TINY, "batch_size": 100_000, "lr": 1e20, "edge_dropout": 0.0}
    with pytest.raises(DivergedError) as caught:
        fit(str(dataset_dir), out=out, **options)

    message = str(caught.value)
    assert "epoch 2, batch 0" in message
    assert f"after epoch 1, is kept in {out / CHECKPOINT_DIR}" in message
    assert f"mgat train --resume {out} lr=" in message
    assert latest_epoch(out) == 1


def test_resume_changes_training_options_only(uninterrupted):
    with pytest.raises(ConfigError, match="training options only"):
        resume(uninterrupted, embed_dim=16)


def test_resume_needs_a_run_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        resume(tmp_path)


def test_cli_refuses_an_existing_run_and_points_to_resume(uninterrupted, capsys):
    assert main(["train", "--out", str(uninterrupted), "--epochs", "1"]) == 2
    error = capsys.readouterr().err
    assert "already exists and is not empty" in error
    assert f"--resume {uninterrupted}" in error


def test_cli_resume_takes_everything_from_the_run(uninterrupted, capsys):
    assert main(["train", "--resume", str(uninterrupted), "--model", "bprmf"]) == 2
    assert "leave out --model" in capsys.readouterr().err


def test_a_fresh_run_clears_only_what_a_run_writes(tmp_path):
    (tmp_path / CHECKPOINT_DIR).mkdir()
    (tmp_path / CHECKPOINT_DIR / STATE_FILE).write_text("{}")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")

    prepare_run_directory(tmp_path, fresh=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_output_path_through_a_file_is_a_storage_error(dataset_dir, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="a part of the path is a file"):
        fit(str(dataset_dir), out=tmp_path / "file" / "run", **TINY)


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_an_unwritable_output_directory_is_a_storage_error(dataset_dir):
    # sysfs refuses new entries even to root, unlike a chmod-ed directory.
    with pytest.raises(StorageError, match="cannot create the run directory"):
        fit(str(dataset_dir), out="/sys/kernel/mgat-run", **TINY)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 KiB tmpfs: room for config.json, not for a checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)]
    if os.geteuid() != 0 or subprocess.run(command, capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_a_storage_error_and_leaves_no_partial_file(
    dataset_dir, small_disk
):
    out = small_disk / "run"
    with pytest.raises(StorageError) as caught:
        fit(str(dataset_dir), out=out, **TINY)

    message = str(caught.value)
    assert "no space left on the device" in message
    assert "epoch 1 checkpoint" in message
    assert list((out / CHECKPOINT_DIR).iterdir()) == []
