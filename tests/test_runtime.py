"""Process-wide memory settings, checked in fresh processes."""

import json
import statistics
import subprocess
import sys

import pytest

# Page faults of each of 20 cycles that allocate and free a 64 MiB tensor, after
# 10 warm-up cycles: with freed memory unmapped, every cycle faults all of its
# 16,384 pages of 4 KiB in again. Kept memory takes a few cycles to settle (an
# aligned request can be larger than the hole a freed block leaves), as the
# training steps' heap does; after that the block is reused.
PROBE = """
import json, resource, sys, torch
from mgat.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()

def cycle():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(2**24)
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

for _ in range(10):
    cycle()
print(json.dumps([cycle() for _ in range(20)]))
"""


def faults(mode: str) -> list[int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_kept_memory_is_reused_without_page_faults():
    assert statistics.median(faults("default")) > 10_000
    assert statistics.median(faults("keep")) < 1_000
