"""Every lesson runs in JupyterLab, in a real (headless) browser, as a student runs it.

A JupyterLab server is started on 127.0.0.1 with a token, a temporary configuration and
a temporary copy of ``notebooks/`` as its root, so nothing the browser does (autosave
included) touches the repository's lessons, and no user setting leaks in. Headless
Chromium (Debian's ``chromium`` package) opens each lesson, runs it with
Run → Run All Cells, and the test reads the page: every code cell has an execution
count, the kernel is idle, and no output is an error. A screenshot of each lesson after
its run is saved to the folder printed at the end of the module.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``playwright`` Python
package (never ``playwright install``: the browser comes from Debian).
"""

from __future__ import annotations

import contextlib
import hashlib
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
from dataclasses import dataclass
from pathlib import Path

import jupytext
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
PAIRED = [lesson.with_suffix(".py") for lesson in LESSONS]
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LESSON_TIMEOUT_S = 1200
"""The slowest lesson trains for minutes on a 2-core machine; this is a hang guard."""
SERVER_START_TIMEOUT_S = 120
VIEWPORT = {"width": 1366, "height": 900}

# What JupyterLab would otherwise pop up over the page on a first launch.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install chromium", allow_module_level=True
    )


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str) -> object:
        """Call the server's REST API and return the decoded JSON (or None)."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def page_url(self, workspace: str, path: str) -> str:
        """URL that opens ``path`` in a fresh, named workspace."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}"

    def shut_down_kernels(self) -> None:
        for kernel in self.api("GET", "/api/kernels") or []:
            with contextlib.suppress(urllib.error.URLError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, to prove the run changed none."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".ipynb_checkpoints" not in path.parts
    }


def write_notebook(path: Path, sources: list[str]) -> None:
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell{i}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for i, source in enumerate(sources)
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook, indent=1))


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory, request) -> Iterator[Path]:
    folder = Path(
        os.environ.get("COURSE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nJupyterLab screenshots: {folder}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab on a free local port, serving a temporary copy of the lessons."""
    before = digests(NOTEBOOKS)
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    shutil.copytree(
        NOTEBOOKS,
        root / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    shutil.copy2(REPO / "jupytext.toml", root / "jupytext.toml")
    selftest = root / "selftest"
    selftest.mkdir()
    write_notebook(selftest / "fine.ipynb", ["x = 6 * 7", "", "print(x)", "x"])
    write_notebook(
        selftest / "broken.ipynb",
        ["x = 1", "raise ValueError('this cell fails on purpose')", "y = 2"],
    )

    config = base / "config"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "JPY_"))
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(base / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        TF_CPP_MIN_LOG_LEVEL="3",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    bin_dir = Path(sys.executable).parent
    # The same command binder/postBuild runs: .py lessons open as notebooks.
    subprocess.run(
        [bin_dir / "jupytext-config", "set-default-viewer", "python"],
        env=env,
        check=True,
        capture_output=True,
    )
    overrides_file = config / "labconfig" / "default_setting_overrides.json"
    overrides = json.loads(overrides_file.read_text())
    overrides.update(LAB_OVERRIDES)
    overrides_file.write_text(json.dumps(overrides, indent=2))

    port, token = free_port(), secrets.token_hex(24)
    log = base / "jupyterlab.log"
    command = [
        str(bin_dir / "jupyter"),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"jupyter lab exited early:\n{log.read_text()}")
                try:
                    server.api("GET", "/api/status")
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline:
                        pytest.fail(f"jupyter lab did not answer:\n{log.read_text()}")
                    time.sleep(0.5)
            yield server
        finally:
            with contextlib.suppress(Exception):
                server.shut_down_kernels()
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    after = digests(NOTEBOOKS)
    changed = sorted(
        name
        for name in before.keys() | after.keys()
        if before.get(name) != after.get(name)
    )
    assert not changed, f"the files changed while JupyterLab ran them: {changed}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab: LabServer) -> Iterator[object]:
    """A fresh browser context (no stored state) per test; kernels shut down after."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()
        with contextlib.suppress(Exception):
            lab.shut_down_kernels()


# What the page shows, read in one go: the kernel status and, per code cell, its
# prompt, whether it has source, and its error outputs.
READ_NOTEBOOK_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell.jp-CodeCell')];
  return {
    status: indicator ? indicator.getAttribute('data-status') : null,
    cells: cells.map((cell) => ({
      prompt: (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
      source: (cell.querySelector('.cm-content')?.textContent || '').trim(),
      stderr: [...cell.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
      )].map((output) => output.textContent),
    })),
  };
}
"""

ERROR_PATTERN = re.compile(r"Traceback|^\w*(Error|Exception)\b", re.MULTILINE)


def open_notebook(page, lab: LabServer, path: str) -> None:
    workspace = re.sub(r"\W", "-", path) + "-" + secrets.token_hex(4)
    page.goto(lab.page_url(workspace, path))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="attached")
    # The kernel is ready when the toolbar's indicator says idle.
    page.wait_for_selector(
        '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]',
        state="attached",
        timeout=120_000,
    )


def menu(page, top: str, item: str) -> None:
    """Click ``top`` in the menu bar, then ``item`` in its menu."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(
        ".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel",
        has_text=re.compile(f"^{re.escape(item)}$"),
    ).first.click()


def prompts(page) -> list[str]:
    state = page.evaluate(READ_NOTEBOOK_JS)
    return [cell["prompt"] for cell in state["cells"]] if state else []


def poll(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def run_all_cells(page) -> None:
    """Clear the stored outputs, then Run → Run All Cells, as a student would.

    The lessons are stored with their outputs and execution counts; clearing them
    first is what proves the counts read afterwards come from this run.
    """
    # Select the first cell, so the notebook is the current widget for the menus.
    page.locator(".jp-NotebookPanel .jp-Cell").first.click()
    menu(page, "Edit", "Clear Outputs of All Cells")
    assert poll(lambda: all(p == "[ ]:" for p in prompts(page)), 30), prompts(page)
    assert page.locator(".jp-NotebookPanel .jp-OutputArea-output").count() == 0
    for _attempt in range(3):
        menu(page, "Run", "Run All Cells")
        if poll(lambda: any(p != "[ ]:" for p in prompts(page)), 20):
            return
    pytest.fail(f"Run All Cells started nothing: prompts {prompts(page)}")


def wait_until_run(page, timeout_s: float) -> dict:
    """Wait until the kernel is idle and no cell is queued; return the page's state."""
    deadline = time.monotonic() + timeout_s
    settled_since = None
    while time.monotonic() < deadline:
        state = page.evaluate(READ_NOTEBOOK_JS)
        busy = state is None or state["status"] != "idle"
        queued = any("*" in cell["prompt"] for cell in (state or {}).get("cells", []))
        if busy or queued:
            settled_since = None
        elif settled_since is None:
            settled_since = time.monotonic()
        elif time.monotonic() - settled_since > 2:
            return state
        time.sleep(0.5)
    pytest.fail(f"the notebook was still running after {timeout_s:.0f} s")


def allowed_errors(notebook: Path) -> set[int]:
    """Code cells (by index among code cells) tagged ``raises-exception``."""
    cells = json.loads(notebook.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    return {
        i
        for i, cell in enumerate(code)
        if "raises-exception" in cell.get("metadata", {}).get("tags", [])
    }


def problems(state: dict, allowed: set[int] = frozenset()) -> list[str]:
    """What a student would see go wrong: cells not run, and error outputs."""
    found = []
    for i, cell in enumerate(state["cells"]):
        if cell["source"] and not re.fullmatch(r"\[\d+\]:", cell["prompt"]):
            found.append(f"code cell {i} has prompt {cell['prompt']!r}, not run")
        for text in cell["stderr"]:
            if ERROR_PATTERN.search(text) and i not in allowed:
                found.append(f"code cell {i} shows an error:\n{text[-2000:]}")
    return found


def run_in_lab(page, lab: LabServer, path: str, screenshot: Path) -> dict:
    open_notebook(page, lab, path)
    run_all_cells(page)
    try:
        return wait_until_run(page, LESSON_TIMEOUT_S)
    finally:
        page.screenshot(path=str(screenshot))


def test_harness_sees_a_clean_run(page, lab: LabServer, screenshots: Path) -> None:
    state = run_in_lab(
        page, lab, "selftest/fine.ipynb", screenshots / "selftest-fine.png"
    )
    prompts = [cell["prompt"] for cell in state["cells"]]
    assert prompts == ["[1]:", "[ ]:", "[2]:", "[3]:"]
    assert problems(state) == []


def test_harness_sees_an_error_and_the_cells_it_stopped(
    page, lab: LabServer, screenshots: Path
) -> None:
    state = run_in_lab(
        page, lab, "selftest/broken.ipynb", screenshots / "selftest-broken.png"
    )
    found = problems(state)
    assert any("ValueError: this cell fails on purpose" in p for p in found), found
    assert any(p.startswith("code cell 2 has prompt") for p in found), found
    assert problems(state, allowed={1}) == [found[-1]]


@pytest.mark.skipif(not LESSONS, reason="no lesson notebooks yet")
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.stem for lesson in LESSONS])
def test_lesson_runs_in_jupyterlab_without_errors(
    page, lab: LabServer, screenshots: Path, lesson: Path
) -> None:
    started = time.monotonic()
    state = run_in_lab(
        page, lab, f"notebooks/{lesson.name}", screenshots / f"{lesson.stem}.png"
    )
    # The copy the server runs (the repository's file may change meanwhile). A paired
    # lesson opens with the inputs of its .py file (jupytext's pairing).
    served = lab.root / "notebooks" / lesson.name
    paired = served.with_suffix(".py")
    source = paired if paired.is_file() else served
    code_cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    assert len(state["cells"]) == len(code_cells), "JupyterLab shows other cells"
    found = problems(state, allowed_errors(served))
    if found:
        # Show the student's view of the first error too.
        page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).first.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / f"{lesson.stem}-error.png"))
    assert found == []
    noise = [text for cell in state["cells"] for text in cell["stderr"]]
    if noise:
        print(f"{lesson.stem}: standard error shown to the student:", *noise, sep="\n")
    print(f"{lesson.stem}: ran in JupyterLab in {time.monotonic() - started:.0f} s")


@pytest.mark.skipif(not any(p.is_file() for p in PAIRED), reason="no paired lessons")
@pytest.mark.parametrize("paired", PAIRED, ids=[p.name for p in PAIRED])
def test_paired_py_lesson_opens_as_a_notebook(
    page, lab: LabServer, screenshots: Path, paired: Path
) -> None:
    if not paired.is_file():
        pytest.skip(f"{paired.name} does not exist yet")
    workspace = "open-py-" + secrets.token_hex(4)
    # Double-click it in the file browser, as a student would.
    page.goto(lab.page_url(workspace, "notebooks"))
    item = page.locator(f'.jp-DirListing-item[title^="Name: {paired.name}"]')
    item.dblclick()
    tab = page.locator(".jp-MainAreaWidget:not(.lm-mod-hidden)")
    tab.locator(".jp-Cell").first.wait_for()
    served = lab.root / "notebooks" / paired.name
    expected = len(jupytext.read(served).cells)
    # Cells are added in batches while the notebook loads.
    cells = tab.locator(".jp-Cell")
    playwright_api.expect(cells).to_have_count(expected, timeout=120_000)
    page.screenshot(path=str(screenshots / f"{paired.stem}-py.png"))
    assert tab.evaluate("node => node.classList.contains('jp-NotebookPanel')")
    assert page.locator(".jp-FileEditor:not(.lm-mod-hidden)").count() == 0
    title = page.locator(".lm-DockPanel-tabBar .lm-mod-current .lm-TabBar-tabLabel")
    assert title.inner_text() == paired.name
