"""The Binder set-up in binder/ builds what the course needs, and lesson 1 runs in it.

mybinder.org builds the image with repo2docker from binder/ alone (runtime.txt,
requirements.txt, postBuild, start). The fast tests check those files and the
Dockerfile repo2docker would build (``--no-build``, no container engine needed). The
slow "rehearsal" repeats the build without a container: a fresh virtual environment
from binder/requirements.txt alone, binder/postBuild run against it, then lesson 1
executed by that environment's kernel, started through binder/start.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
LESSON_1 = REPO / "notebooks" / "01_explore_mnist.ipynb"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(;.*)?$")


def pins(requirements: Path) -> list[tuple[str, str, str]]:
    """(name, version, marker) of each line of a requirements file."""
    found = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"{requirements.name}: {line!r} is not pinned with =="
        name, version, marker = match.groups()
        found.append((name.lower(), version, (marker or "").lstrip("; ")))
    return found


def test_binder_runs_python_311() -> None:
    assert (BINDER / "runtime.txt").read_text() == "python-3.11\n"


def test_binder_pins_are_the_course_pins_with_cpu_only_tensorflow() -> None:
    course = {}
    for name, version, _marker in pins(REPO / "requirements.txt"):
        # The course picks tensorflow-cpu or tensorflow by platform; Binder is
        # Linux x86-64 without a GPU, so tensorflow-cpu is the one.
        course["tensorflow-cpu" if name == "tensorflow" else name] = version
    binder = pins(BINDER / "requirements.txt")
    assert all(marker == "" for _, _, marker in binder), "Binder needs no markers"
    assert {name: version for name, version, _ in binder} == course


def test_binder_scripts_are_executable_bash_that_stops_on_errors() -> None:
    for name in ("postBuild", "start"):
        script = BINDER / name
        assert os.access(script, os.X_OK), f"chmod +x binder/{name}"
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        subprocess.run(["bash", "-n", script], check=True)
    post_build = (BINDER / "postBuild").read_text()
    assert "set -euo pipefail" in post_build
    assert "pip install --no-cache-dir --no-deps ." in post_build
    assert "jupytext-config set-default-viewer python" in post_build
    start = (BINDER / "start").read_text()
    assert "export TF_CPP_MIN_LOG_LEVEL=3" in start
    assert start.rstrip().endswith('exec "$@"')


def test_binder_start_passes_the_command_on_with_quiet_tensorflow() -> None:
    result = subprocess.run(
        [
            BINDER / "start",
            sys.executable,
            "-c",
            "import os, sys; print(sys.argv[1:], os.environ['TF_CPP_MIN_LOG_LEVEL'])",
            "a b",
            "c",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "['a b', 'c'] 3\n"


def repo2docker_dry_run() -> tuple[str, str]:
    """The Dockerfile repo2docker would build, and its log."""
    tool = Path(sys.executable).parent / "jupyter-repo2docker"
    if not tool.is_file():
        pytest.skip("jupyter-repo2docker is not installed (pip install '.[test]')")
    # The user Binder builds as; without it repo2docker takes the caller's uid.
    result = subprocess.run(
        [tool, "--no-build", "--user-id", "1000", "--user-name", "jovyan", REPO],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def test_repo2docker_would_build_from_binder_files() -> None:
    dockerfile, log = repo2docker_dry_run()
    pip = "${KERNEL_PYTHON_PREFIX}/bin/pip"
    steps = [
        f'RUN {pip} install --no-cache-dir -r "binder/requirements.txt"',
        "COPY --chown=1000:1000 src/ ${REPO_DIR}/",
        "RUN ./binder/postBuild",
        'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"',
    ]
    lines = dockerfile.splitlines()
    for step in steps:
        assert step in lines, f"repo2docker's Dockerfile lacks {step!r}:\n{dockerfile}"
    # postBuild needs the whole repository (pyproject.toml, course_utils): it must
    # come after the copy, and the requirements before it.
    assert [lines.index(step) for step in steps] == sorted(
        lines.index(step) for step in steps
    )
    # One environment for the server and the kernel: Python 3.11 from runtime.txt.
    assert "Building conda environment for python=3.11" in log
    assert "ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}" in lines
    # Nothing else in the repository may steer the build.
    assert "environment.yml" not in dockerfile.replace("/environment.yml", "")
    assert "apt.txt" not in dockerfile


# --- the rehearsal -----------------------------------------------------------------


def git_files() -> list[Path]:
    """What a clone would hold: tracked files plus new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [Path(name) for name in listed.split("\0") if (REPO / name).is_file()]


def binder_env(home: Path, venv: Path) -> dict[str, str]:
    """The environment of Binder's user: its own home, the image's Python first."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "JPY_", "VIRTUAL_ENV", "PYTHON"))
        and key not in {"TF_CPP_MIN_LOG_LEVEL", "COURSE_MNIST_PATH"}
    }
    env["HOME"] = str(home)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return env


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Binder image without a container: venv, repository copy, postBuild run."""
    python = shutil.which("python3.11")
    if python is None:
        pytest.skip("Binder runs Python 3.11: no python3.11 on PATH")
    base = tmp_path_factory.mktemp("binder")
    repo, home, venv = base / "repo", base / "home", base / "venv"
    home.mkdir()
    for name in git_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    env = binder_env(home, venv)
    subprocess.run([python, "-m", "venv", venv], check=True)
    subprocess.run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            "binder/requirements.txt",
        ],
        cwd=repo,
        env=env,
        check=True,
        timeout=1800,
    )
    subprocess.run(["./binder/postBuild"], cwd=repo, env=env, check=True, timeout=600)
    return {"repo": repo, "home": home, "venv": venv}


@pytest.mark.slow
def test_rehearsal_post_build_installs_course_utils_and_leaves_no_build_files(
    rehearsal: dict[str, Path],
) -> None:
    venv, repo = rehearsal["venv"], rehearsal["repo"]
    probe = (
        "import course_utils.data as d; print(d.BUNDLED_PATH.is_file(), d.BUNDLED_PATH)"
    )
    result = subprocess.run(
        [venv / "bin" / "python", "-c", probe],
        cwd=repo / "notebooks",
        env=binder_env(rehearsal["home"], venv),
        capture_output=True,
        text=True,
        check=True,
    )
    found, path = result.stdout.split()
    assert found == "True"
    assert Path(path).is_relative_to(venv), "course_utils came from the repository"
    assert not (repo / "build").exists()
    assert not (repo / "course_utils.egg-info").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def binder_lab(rehearsal: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """JupyterLab from the rehearsal's environment, started as Binder starts it."""
    port, token = free_port(), secrets.token_hex(24)
    env = binder_env(rehearsal["home"], rehearsal["venv"])
    command = [
        "./binder/start",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}",
    ]
    log = rehearsal["home"] / "jupyterlab.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=rehearsal["repo"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    api(url, token, "/api/status")
                    break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.5)
            yield url, token
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def api(url: str, token: str, path: str) -> dict:
    request = urllib.request.Request(
        url + path, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_rehearsal_lab_opens_py_lessons_as_notebooks(
    binder_lab: tuple[str, str],
) -> None:
    url, token = binder_lab
    settings = api(
        url, token, "/lab/api/settings/@jupyterlab/docmanager-extension:plugin"
    )
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("python") == "Jupytext Notebook"
    paired = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
    if paired:
        model = api(url, token, f"/api/contents/notebooks/{paired[0].name}")
        assert model["type"] == "notebook"
        assert model["content"]["cells"]


@pytest.mark.slow
@pytest.mark.skipif(not LESSON_1.is_file(), reason="lesson 1 is not written yet")
def test_rehearsal_runs_lesson_1_without_errors(rehearsal: dict[str, Path]) -> None:
    repo, venv = rehearsal["repo"], rehearsal["venv"]
    out = rehearsal["home"] / "executed"
    notebooks = repo / "notebooks"
    probe = notebooks / "zz_binder_probe.ipynb"
    probe.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "execution_count": None,
                        "id": "probe",
                        "metadata": {},
                        "outputs": [],
                        "source": "import os, sys, course_utils\n"
                        "print(sys.executable)\nprint(course_utils.__file__)\n"
                        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])",
                    }
                ],
                "metadata": {
                    "kernelspec": {
                        "name": "python3",
                        "language": "python",
                        "display_name": "Python 3",
                    }
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    for notebook in (probe, notebooks / LESSON_1.name):
        subprocess.run(
            [
                "./binder/start",
                "jupyter",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--ExecutePreprocessor.timeout=900",
                f"--output-dir={out}",
                notebook,
            ],
            cwd=repo,
            env=binder_env(rehearsal["home"], venv),
            check=True,
            capture_output=True,
            timeout=1800,
        )
    lines = json.loads((out / probe.name).read_text())["cells"][0]["outputs"][0]["text"]
    executable, module, level = "".join(lines).split()
    assert Path(executable).parent == venv / "bin"
    assert Path(module).is_relative_to(venv)
    assert level == "3"

    executed = json.loads((out / LESSON_1.name).read_text())
    for i, cell in enumerate(executed["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell["source"] == "" or cell["execution_count"], f"cell {i} not run"
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"cell {i}: {output}"
            if output.get("name") == "stderr":
                assert "Traceback" not in "".join(output["text"]), f"cell {i}"
