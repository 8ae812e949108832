"""``mgat serve`` as a real process on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from mgat.cli import main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, limit_s: float = 60):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mgat serve exited: {process.stderr.read()}")
        try:
            return httpx.get(f"{url}/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"mgat serve did not answer within {limit_s} s")


def test_serve_answers_over_http(mgat_run):
    port = free_port()
    command = [sys.executable, "-m", "mgat", "serve", "--run", str(mgat_run)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_healthy(url, process).json() == {"status": "ok"}
        response = httpx.get(f"{url}/users/u6/recommendations", params={"k": 3})
        assert response.status_code == 200
        assert len(response.json()["recommendations"]) == 3
        assert httpx.get(f"{url}/users/x/recommendations").status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert f"on http://127.0.0.1:{port}" in process.stdout.read()


def test_serve_refuses_a_missing_run(tmp_path, capsys):
    assert main(["serve", "--run", str(tmp_path / "none")]) == 2
    assert "no model.json" in capsys.readouterr().err
