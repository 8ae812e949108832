"""Process-wide memory settings, checked in fresh processes."""

import subprocess
import sys

import pytest

# Page faults of the second of two same-sized 64 MiB allocations: with freed
# memory unmapped, the second faults every page in again (16,384 of 4 KiB).
PROBE = """
import resource, sys, torch
from mgat.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()
x = torch.ones(2**24); del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(2**24)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_kept_memory_is_reused_without_page_faults():
    assert faults("default") > 10_000
    assert faults("keep") < 1_000
