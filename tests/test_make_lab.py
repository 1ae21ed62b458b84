"""`make lab`, the README's first command, starts JupyterLab on lesson 1."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_jupyterlab_with_lesson_1(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_hex(16)
    lab_args = (
        f"--no-browser --allow-root --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
        f"--ServerApp.port_retries=0 --IdentityProvider.token={token}"
    )
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"LAB_ARGS={lab_args}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert make.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}") as r:
                    status = json.load(r)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(1)
        assert status["kernels"] == 0
        # Given a notebook, Jupyter serves the notebook's folder: the lessons.
        with urllib.request.urlopen(f"{base}/api/contents?token={token}") as response:
            names = {item["name"] for item in json.load(response)["content"]}
        assert {"01_explore_mnist.ipynb", "01_explore_mnist.py"} <= names
        with urllib.request.urlopen(f"{base}/lab?token={token}") as response:
            assert "JupyterLab" in response.read().decode()
        assert "01_explore_mnist.ipynb" in log.read_text()
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)
