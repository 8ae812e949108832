"""``mgat features text|image|audio`` and ``mgat data build``, end to end."""

from __future__ import annotations

import json

import numpy as np
import soundfile
from PIL import Image

from mgat.cli import main
from mgat.data import Dataset
from mgat.data.importers import import_csv


def _items(tmp_path):
    """Two items with a description, an image and a sound each."""
    for name, colour, pitch in (("a", (250, 10, 10), 200.0), ("b", (10, 10, 250), 2e3)):
        Image.new("RGB", (24, 16), colour).save(tmp_path / f"{name}.png")
        time = np.arange(11_025) / 22_050
        soundfile.write(
            tmp_path / f"{name}.wav", np.sin(2 * np.pi * pitch * time), 22_050
        )
    table = "item,text,image,sound\n"
    table += "a,a red square,a.png,a.wav\nb,a blue square,b.png,b.wav\n"
    (tmp_path / "items.csv").write_text(table)
    return str(tmp_path / "items.csv")


def test_each_extractor_writes_an_array_and_a_sidecar(tmp_path, capsys):
    items = _items(tmp_path)
    commands = {
        "text": ["--column", "text", "--batch-size", "1"],
        "image": ["--column", "image"],
        "audio": ["--column", "sound", "--max-seconds", "0"],
    }
    for kind, options in commands.items():
        out = str(tmp_path / "features" / f"{kind}.npy")
        assert main(["features", kind, "--items", items, "--out", out, *options]) == 0
        assert "wrote 2 x " in capsys.readouterr().out
        sidecar = json.loads((tmp_path / "features" / f"{kind}.npy.json").read_text())
        assert sidecar["rows"] == 2 and sidecar["source"]["column"] == options[1]
    assert (
        json.loads((tmp_path / "features" / "audio.npy.json").read_text())[
            "parameters"
        ]["max_seconds"]
        is None
    )


def test_extracted_files_import_as_modalities(tmp_path):
    items = _items(tmp_path)
    out = str(tmp_path / "image.npy")
    assert (
        main(["features", "image", "--items", items, "--column", "image", "--out", out])
        == 0
    )
    pairs = "u,a,train\nu,b,valid\nv,a,test\nv,b,train\n"
    (tmp_path / "interactions.csv").write_text("user,item,split\n" + pairs)
    dataset = import_csv(
        tmp_path / "interactions.csv", features={"image": out}, items_file=items
    )
    assert dataset.features["image"].shape == (2, 74)


def test_a_bad_row_is_a_clean_error(tmp_path, capsys):
    items = _items(tmp_path)
    (tmp_path / "a.png").write_text("broken")
    args = ["features", "image", "--items", items, "--column", "image"]
    assert main([*args, "--out", str(tmp_path / "x.npy")]) == 2
    assert "row 0: " in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "x.npy"), "--impute-mean"]) == 0


def test_data_build_movielens(tmp_path, capsys, monkeypatch):
    # The text encoder's real output is covered by tests/features/test_text.py.
    monkeypatch.setattr(
        "mgat.features.text.encode_texts",
        lambda texts, *a, **k: np.ones((len(texts), 384), dtype=np.float32),
    )
    out = tmp_path / "ml"
    assert main(["data", "build", "movielens-100k", "--out", str(out)]) == 0
    assert "1,682" in capsys.readouterr().out
    assert (out / "PROVENANCE.md").is_file()
    assert Dataset.load(out).modalities == ["text", "genre_year"]

    assert main(["data", "build", "movielens-100k", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    command = ["data", "build", "movielens-100k", "--out", str(out), "--seed", "1"]
    assert main([*command, "--overwrite"]) == 0
    assert Dataset.load(out).meta["split"]["seed"] == 1
