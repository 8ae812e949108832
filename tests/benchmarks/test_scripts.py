"""The scaling and sparse-tile benchmarks run end to end on small graphs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script, *args, cwd):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_scaling_writes_its_table_plot_and_exponent(tmp_path):
    out = run(
        "scaling.py", "--sizes", "3000", "6000", "--tile-nodes", "64",
        "--out", str(tmp_path / "scaling"), cwd=tmp_path,
    )  # fmt: skip
    assert "growth exponent of epoch time" in out
    table = (tmp_path / "scaling" / "scaling.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # the header and one row per size
    assert "Growth exponent of epoch time over interactions" in table
    assert (tmp_path / "scaling" / "scaling.png").stat().st_size > 0


@pytest.mark.parametrize("kernel", ["spmm", "sddmm"])
def test_sparse_tiles_times_both_products(tmp_path, kernel):
    out = run(
        "sparse_tiles.py", "--sizes", "5000", "--tile-nodes", "100",
        "--repeats", "1", "--kernel", kernel, cwd=tmp_path,
    )  # fmt: skip
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(rows) == 2
    cells = [cell.strip() for cell in rows[1].strip("|").split("|")]
    assert int(cells[2]) > 1  # more than one tile
    whole_ms, tiled_ms = float(cells[3]), float(cells[4])
    assert whole_ms >= 0 and tiled_ms >= 0
    # The ratio is printed to two places, so a tiny graph may show 0.00x.
    assert re.fullmatch(r"\d+\.\d\dx", cells[-1])
