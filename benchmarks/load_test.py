"""Load test of ``mgat serve``: throughput and latency of single-user requests.

Starts ``mgat serve`` for a run directory in a second process on a free
loopback port, sends a bounded number of ``GET /users/{id}/recommendations``
requests from a fixed number of concurrent clients (users drawn at random from
the model's users), stops early when the time limit is reached, and prints a
table: requests/s, latency percentiles and failures.

    python benchmarks/load_test.py --run runs/tiktok --requests 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import itertools
import random
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np


@dataclass
class Results:
    """What the clients saw; appended to from several threads under a lock."""

    latencies_s: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, latency_s: float, failure: str | None) -> None:
        with self.lock:
            if failure is None:
                self.latencies_s.append(latency_s)
            else:
                self.failures[failure] = self.failures.get(failure, 0) + 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    users = read_users(Path(args.run))
    port = free_port()
    server = start_server(args, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, args.startup_s)
        warm_up(url, users, args.k)
        results, elapsed = run_load(url, users, args)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(report(results, elapsed, args))
    return 0 if not results.failures else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run directory to serve")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="ask for explanations")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds")
    parser.add_argument("--startup-s", type=float, default=120.0)
    parser.add_argument("--threads", type=int, help="torch threads of the server")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be >= 1")
    return args


def read_users(run: Path) -> list[str]:
    for path in (run / "model" / "users.txt", run / "users.txt"):
        if path.is_file():
            return [line for line in path.read_text().splitlines() if line]
    sys.exit(f"load_test: no users.txt under {run}; pass a run directory.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "mgat", "-q", "serve", "--run", args.run]
    command += ["--port", str(port)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


def wait_until_healthy(url: str, server: subprocess.Popen, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"load_test: mgat serve exited with code {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.25)
    sys.exit(f"load_test: the server did not answer within {limit_s:.0f} s")


def warm_up(url: str, users: list[str], k: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for user in users[:20]:
            client.get(f"/users/{user}/recommendations", params={"k": k})


def run_load(
    url: str, users: list[str], args: argparse.Namespace
) -> tuple[Results, float]:
    """Send the requests from ``concurrency`` clients; (results, seconds)."""
    rng = random.Random(args.seed)
    queue = iter([rng.choice(users) for _ in range(args.requests)])
    queue_lock = threading.Lock()
    results = Results()
    params = {"k": args.k, "explain": str(args.explain).lower()}
    start = time.perf_counter()
    deadline = start + args.time_limit

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.perf_counter() < deadline:
                with queue_lock:
                    user = next(queue, None)
                if user is None:
                    return
                results.record(
                    *timed_get(client, f"/users/{user}/recommendations", params)
                )

    with ThreadPoolExecutor(args.concurrency) as pool:
        for future in [pool.submit(client_loop) for _ in range(args.concurrency)]:
            future.result()
    return results, time.perf_counter() - start


def timed_get(client: httpx.Client, path: str, params: dict):
    """(latency in seconds, None or a failure label) of one request."""
    tick = time.perf_counter()
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as err:
        return time.perf_counter() - tick, type(err).__name__
    latency = time.perf_counter() - tick
    if response.status_code != 200:
        return latency, f"HTTP {response.status_code}"
    return latency, None


def report(results: Results, elapsed: float, args: argparse.Namespace) -> str:
    done = len(results.latencies_s)
    failed = sum(results.failures.values())
    latencies_ms = np.array(results.latencies_s or [np.nan]) * 1000
    p50, p90, p99 = np.percentile(latencies_ms, [50, 90, 99])
    rows = [
        ("requests sent", f"{done + failed} of {args.requests}"),
        ("concurrent clients", f"{args.concurrency}"),
        ("k / explain", f"{args.k} / {args.explain}"),
        ("wall time", f"{elapsed:.2f} s"),
        ("requests/s", f"{done / elapsed:.1f}"),
        ("latency p50", f"{p50:.1f} ms"),
        ("latency p90", f"{p90:.1f} ms"),
        ("latency p99", f"{p99:.1f} ms"),
        ("latency max", f"{np.max(latencies_ms):.1f} ms"),
        ("failures", f"{failed}" + _failure_kinds(results.failures)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _failure_kinds(failures: dict[str, int]) -> str:
    if not failures:
        return ""
    parts = itertools.islice(sorted(failures.items(), key=lambda kv: -kv[1]), 3)
    return " (" + ", ".join(f"{kind}: {count}" for kind, count in parts) + ")"


if __name__ == "__main__":
    sys.exit(main())
