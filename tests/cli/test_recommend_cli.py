"""``mgat recommend``: formats, original ids, streaming, new items and bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from mgat.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mgat", "recommend", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def train_ids(clusters, user: str) -> set[str]:
    index = int(user[1:])
    return {f"i{i}" for i in clusters.train_items(index)}


def test_csv_in_a_subprocess(mgat_run, clusters):
    result = run_cli(
        "--run", str(mgat_run), "--user", "u0", "u7", "--k", "5", "--format", "csv"
    )
    assert result.returncode == 0, result.stderr

    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["user", "rank", "item", "score"]
    body = rows[1:]
    assert [r[0] for r in body] == ["u0"] * 5 + ["u7"] * 5
    assert [int(r[1]) for r in body] == [1, 2, 3, 4, 5] * 2
    for user, _, item, _ in body:
        assert item.startswith("i") and item not in train_ids(clusters, user)
    scores = [float(r[3]) for r in body[:5]]
    assert scores == sorted(scores, reverse=True)


def test_all_users_stream_to_a_file(mgat_run, clusters, tmp_path, capsys):
    out = tmp_path / "all.csv"
    args = ["recommend", "--run", str(mgat_run), "--all-users", "--k", "3"]
    assert main([*args, "--format", "csv", "--out", str(out), "--batch-size", "7"]) == 0

    assert "wrote recommendations for 30 users" in capsys.readouterr().out
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 * 3
    assert {r["user"] for r in rows} == {f"u{u}" for u in range(30)}
    assert not any(r["item"] in train_ids(clusters, r["user"]) for r in rows)
    assert not list(tmp_path.glob(".*partial"))


def test_json_with_explanations(mgat_run, capsys):
    args = ["recommend", "--run", str(mgat_run), "--user", "u2", "--k", "4"]
    assert main([*args, "--format", "json", "--explain"]) == 0

    (record,) = json.loads(capsys.readouterr().out)
    assert record["user"] == "u2"
    for row in record["recommendations"]:
        assert sum(row["shares"].values()) == pytest.approx(row["score"], rel=1e-5)
        assert set(row["evidence"]) == {"visual", "acoustic"}


def test_csv_explanation_columns_and_parquet(mgat_run, tmp_path, capsys):
    base = ["recommend", "--run", str(mgat_run), "--user", "u1", "u2", "--k", "2"]
    assert main([*base, "--format", "csv", "--explain"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == [
        "user",
        "rank",
        "item",
        "score",
        "share_visual",
        "share_acoustic",
        "evidence_visual",
        "evidence_acoustic",
    ]
    shares = float(rows[0]["share_visual"]) + float(rows[0]["share_acoustic"])
    assert shares == pytest.approx(float(rows[0]["score"]), rel=1e-5)
    assert rows[0]["evidence_visual"].count(":") == 3

    out = tmp_path / "recs.parquet"
    assert main([*base, "--format", "parquet", "--out", str(out)]) == 0
    table = pq.read_table(out).to_pydict()
    assert table["user"] == ["u1", "u1", "u2", "u2"] and table["rank"] == [1, 2, 1, 2]


def test_table_output(mgat_run, capsys):
    args = ["recommend", "--run", str(mgat_run), "--user", "u3", "--k", "2"]
    assert main([*args, "--explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "user u3"
    assert lines[1].lstrip().startswith("1. i") and "visual" in lines[1]


def test_new_items_are_ranked_from_a_features_directory(mgat_run, clusters, tmp_path):
    features = clusters.new_item_features([0, 1])
    (tmp_path / "items.txt").write_text("fresh-a\nfresh-b\n")
    for name, array in features.items():
        np.save(tmp_path / f"{name}.npy", array)
    out = tmp_path / "with_new.csv"
    args = ["recommend", "--run", str(mgat_run), "--all-users", "--k", "42"]
    args += ["--format", "csv", "--out", str(out), "--new-items", str(tmp_path)]
    assert main(args) == 0

    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    rank = {(r["user"], r["item"]): int(r["rank"]) for r in rows}
    for user, cluster in enumerate(clusters.user_cluster):
        first, second = rank[f"u{user}", "fresh-a"], rank[f"u{user}", "fresh-b"]
        assert (first < second) == (cluster == 0)


def test_bad_arguments_exit_2(mgat_run, tmp_path, capsys):
    base = ["recommend", "--run", str(mgat_run)]
    assert main([*base, "--user", "nobody"]) == 2
    assert "unknown user id(s) ['nobody']" in capsys.readouterr().err
    assert main([*base, "--user", "u0", "--k", "0"]) == 2
    assert "k: expected an integer in [1, 40]" in capsys.readouterr().err
    assert main([*base, "--all-users", "--format", "parquet"]) == 2
    assert "pass --out FILE" in capsys.readouterr().err
    assert main([*base, "--all-users", "--new-items", str(tmp_path)]) == 2
    assert "no items.txt" in capsys.readouterr().err


def test_tampered_or_truncated_model_exits_2(mgat_run, tmp_path):
    copy = shutil.copytree(mgat_run, tmp_path / "run")
    weights = copy / "model" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = run_cli("--run", str(copy), "--user", "u0")
    assert result.returncode == 2
    assert "checksum mismatch" in result.stderr and "Traceback" not in result.stderr

    manifest = copy / "model" / "model.json"
    manifest.write_text(manifest.read_text()[:40])
    assert main(["recommend", "--run", str(copy), "--user", "u0"]) == 2
