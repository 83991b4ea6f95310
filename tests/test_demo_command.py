"""`shelfwise demo` end to end: first run generates and serves, a second run reuses the shop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.serving_helpers import free_port

pytestmark = pytest.mark.slow

SMALL = ["--items", "300", "--users", "80", "--events", "4000"]


def shelfwise(home, *args):
    env = {**os.environ, "SHELFWISE_HOME": str(home)}
    env.pop("SHELFWISE_DB", None)
    return [sys.executable, "-m", "shelfwise.cli", "--quiet", *args], env


def test_demo_prepares_then_reuses(tmp_path):
    cmd, env = shelfwise(tmp_path / "home", "demo", "--no-serve", *SMALL)
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "generated the demo shop" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "reusing the shop" in second.stdout and "generated" not in second.stdout


def test_demo_serves_health_and_listing(tmp_path):
    port = free_port()
    cmd, env = shelfwise(tmp_path / "home", "demo", "--port", str(port), *SMALL)
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        deadline = time.time() + 300
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "demo did not serve in time"
            time.sleep(0.5)
        assert "<title>shelfwise" in httpx.get(f"http://127.0.0.1:{port}/").text
        assert httpx.get(f"http://127.0.0.1:{port}/items").json()["total"] == 300
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
