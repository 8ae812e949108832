"""``mgat data info`` and ``mgat data import``."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from mgat.cli import main
from mgat.data import Dataset


def test_info_tiktok_in_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "mgat", "data", "info", "tiktok"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = result.stdout
    assert "9,308" in out and "6,710" in out
    assert "59,541 / 3,051 / 6,130" in out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert lines["modality visual"].endswith("128-d")
    assert lines["modality acoustic"].endswith("128-d")


def test_import_csv_with_features(csv_source, tmp_path, capsys):
    out = tmp_path / "imported"
    args = ["data", "import", "--format", "csv", str(csv_source["path"])]
    args += ["--out", str(out), "--user-col", "uid", "--item-col", "iid"]
    args += ["--items-file", str(csv_source["items_file"])]
    for name, path in csv_source["features"].items():
        args += ["--feature", f"{name}={path}"]

    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "train / valid / test        18 / 6 / 6" in printed
    assert f"saved to {out}" in printed
    assert sorted(Dataset.load(out).modalities) == ["acoustic", "visual"]


def test_import_research_and_mmrec(research_dir, mmrec_dir, tmp_path):
    command = ["data", "import", "--format"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert main([*command, "research", str(research_dir), "--out", a]) == 0
    assert main([*command, "mmrec", str(mmrec_dir), "--out", b]) == 0
    first, second = Dataset.load(tmp_path / "a"), Dataset.load(tmp_path / "b")
    assert first.info().num_interactions == second.info().num_interactions


def test_import_tsv_with_a_splitter(unsplit_frame, tmp_path):
    unsplit_frame.to_csv(tmp_path / "x.txt", sep="\t", index=False)
    args = ["data", "import", "--format", "csv", str(tmp_path / "x.txt")]
    args += ["--out", str(tmp_path / "out"), "--sep", "\\t", "--split", "temporal"]
    args += ["--ratios", "0.7,0.2,0.1", "--kcore", "2"]

    assert main(args) == 0
    counts = Dataset.load(tmp_path / "out").info().num_interactions
    assert counts == {"train": 210, "valid": 60, "test": 30}


def test_failed_import_leaves_nothing_behind(tmp_path, capsys):
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "split": "train"}).to_csv(
        tmp_path / "x.csv", index=False
    )
    out = tmp_path / "target" / "ds"
    args = ["data", "import", "--format", "csv", str(tmp_path / "x.csv")]

    assert main([*args, "--out", str(out)]) == 2
    assert "the valid split is empty" in capsys.readouterr().err
    assert not (tmp_path / "target").exists()


def test_failed_save_removes_the_staging_directory(mmrec_dir, tmp_path, monkeypatch):
    def broken_save(self, directory):
        (directory / "dataset.json").write_text("{")
        raise OSError("disk full")

    monkeypatch.setattr(Dataset, "save", broken_save)
    args = ["data", "import", "--format", "mmrec", str(mmrec_dir)]
    with pytest.raises(OSError, match="disk full"):
        main([*args, "--out", str(tmp_path / "ds")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mmrec"]


def test_existing_output_needs_overwrite(mmrec_dir, tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["data", "import", "--format", "mmrec", str(mmrec_dir), "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err

    (mmrec_dir / "toy.inter").rename(mmrec_dir / "renamed.inter")
    assert main([*args, "--overwrite"]) == 0
    assert Dataset.load(out).name == "renamed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "mmrec"]


def test_overwrite_refuses_a_directory_that_is_not_a_dataset(
    mmrec_dir, tmp_path, capsys
):
    args = ["data", "import", "--format", "mmrec", str(mmrec_dir)]
    assert main([*args, "--out", str(tmp_path), "--overwrite"]) == 2
    assert "is not a dataset directory" in capsys.readouterr().err
    assert (mmrec_dir / "toy.inter").exists()


def test_option_of_another_format_is_rejected(mmrec_dir, tmp_path, capsys):
    args = ["data", "import", "--format", "mmrec", str(mmrec_dir), "--out"]
    assert main([*args, str(tmp_path / "ds"), "--kcore", "5"]) == 2
    err = capsys.readouterr().err
    assert "--kcore does not apply to --format mmrec" in err
    assert "--user-col" in err
    assert not (tmp_path / "ds").exists()


def test_malformed_feature_flag(csv_source, tmp_path, capsys):
    args = ["data", "import", "--format", "csv", str(csv_source["path"])]
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "ds"), "--feature", "visual"])
    assert "expected NAME=PATH" in capsys.readouterr().err
