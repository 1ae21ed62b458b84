"""Run a rebuilt submission notebook and judge its test cells.

:func:`run_notebook` executes the code cells of a notebook in order and says, for
every test cell, whether it raised. Kernels come from the caller's ``start_kernel``
(a sandboxed one when grading, a plain local one in tests). Outputs are kept up to a
cap, per cell and per notebook; a cell that runs too long is interrupted; the whole
notebook has a wall-clock limit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Literal

import nbformat
import zmq
from jupyter_client import KernelClient, KernelManager
from nbformat import NotebookNode

Role = Literal["setup", "student", "test"]
StartKernel = Callable[[str], tuple[KernelManager, KernelClient]]

_GRACE = 5.0
"""Seconds a kernel gets to answer after an interrupt or at the end of a cell."""


@dataclass
class TestResult:
    """The verdict on one test cell: ``passed`` when it ran and raised nothing."""

    passed: bool
    message: str


@dataclass
class RunResult:
    """What running one notebook gave.

    ``notebook`` is the executed notebook (outputs capped); ``tests`` maps the index of
    every test cell to its verdict; ``failure`` names the first event that stopped or
    cut short the run (a timeout, a dead kernel, the notebook's time limit), or is
    ``None``.
    """

    notebook: NotebookNode
    tests: dict[int, TestResult]
    failure: str | None = None


@dataclass
class _Outputs:
    """Outputs of one cell, kept while they fit the cell's and the notebook's cap."""

    budget: _Budget
    cell_limit: int
    items: list[dict[str, Any]] = field(default_factory=list)
    kept: int = 0
    dropped: int = 0

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "clear_output":
            self.items.clear()
            return
        output = _to_output(msg_type, content)
        if output is None:
            return
        size = _size(output)
        if self.kept + size > self.cell_limit or not self.budget.take(size):
            self.dropped += size
            return
        self.kept += size
        last = self.items[-1] if self.items else None
        if (
            output["output_type"] == "stream"
            and last is not None
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
        ):
            last["text"] += output["text"]
        else:
            self.items.append(output)

    def notebook_outputs(self) -> list[NotebookNode]:
        outputs = [nbformat.from_dict(item) for item in self.items]
        if self.dropped:
            outputs.append(
                nbformat.v4.new_output(
                    "stream",
                    name="stderr",
                    text=f"[grader: {self.dropped} more bytes of output dropped]\n",
                )
            )
        return outputs


@dataclass
class _Budget:
    """Bytes of output the whole notebook may still keep."""

    left: int

    def take(self, size: int) -> bool:
        if size > self.left:
            self.left = 0
            return False
        self.left -= size
        return True


def _to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": str(content.get("name", "stdout")),
            "text": str(content.get("text", "")),
        }
    if msg_type in ("display_data", "execute_result"):
        output = {
            "output_type": msg_type,
            "data": dict(content.get("data", {})),
            "metadata": dict(content.get("metadata", {})),
        }
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": str(content.get("ename", "")),
            "evalue": str(content.get("evalue", "")),
            "traceback": [str(line) for line in content.get("traceback", [])],
        }
    return None


def _size(output: dict[str, Any]) -> int:
    if output["output_type"] == "stream":
        return len(output["text"])
    if output["output_type"] == "error":
        return sum(len(line) for line in output["traceback"]) + len(output["evalue"])
    return sum(len(str(value)) for value in output["data"].values())


@dataclass
class _Execution:
    """How one execute request ended: ``status`` is ok, error, timeout or dead."""

    status: Literal["ok", "error", "timeout", "dead"]
    ename: str = ""
    evalue: str = ""


class _Kernel:
    """One started kernel, with the execute loop the grader needs."""

    def __init__(self, manager: KernelManager, client: KernelClient) -> None:
        self.manager = manager
        self.client = client
        self.dead = False
        with contextlib.suppress(AttributeError, zmq.ZMQError):
            client.iopub_channel.socket.setsockopt(zmq.MAXMSGSIZE, 64 * 1024**2)

    def execute(
        self, code: str, timeout: float, outputs: _Outputs | None, *, silent: bool
    ) -> _Execution:
        """Run ``code``; collect its outputs into ``outputs``; interrupt at timeout."""
        if self.dead:
            return _Execution("dead")
        msg_id = self.client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False
        )
        return self.wait(msg_id, timeout, outputs)

    def wait(self, msg_id: str, timeout: float, outputs: _Outputs | None) -> _Execution:
        """Wait for the reply to ``msg_id``, then for its last outputs."""
        deadline = time.monotonic() + timeout
        reply = self._reply(msg_id, deadline, outputs)
        if reply is None and not self.dead:
            with contextlib.suppress(Exception):
                self.manager.interrupt_kernel()
            if self._reply(msg_id, time.monotonic() + _GRACE, outputs) is None:
                self.dead = True
            return _Execution("timeout")
        if reply is None:
            return _Execution("dead")
        self._drain(msg_id, outputs)
        if reply.get("status") == "ok":
            return _Execution("ok")
        return _Execution(
            "error", str(reply.get("ename", "")), str(reply.get("evalue", ""))
        )

    def _reply(
        self, msg_id: str, deadline: float, outputs: _Outputs | None
    ) -> dict[str, Any] | None:
        poller = zmq.Poller()
        poller.register(self.client.shell_channel.socket, zmq.POLLIN)
        poller.register(self.client.iopub_channel.socket, zmq.POLLIN)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready = dict(poller.poll(min(left, 1.0) * 1000))
            if not ready:
                if not self.manager.is_alive():
                    self.dead = True
                    return None
                continue
            if self.client.iopub_channel.socket in ready:
                self._take_iopub(msg_id, outputs)
            if self.client.shell_channel.socket in ready:
                with contextlib.suppress(Empty):
                    msg = self.client.shell_channel.get_msg(timeout=0)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        return msg["content"]

    def _take_iopub(self, msg_id: str, outputs: _Outputs | None) -> bool:
        """Handle one ready iopub message; True when it says ``msg_id`` is done."""
        try:
            msg = self.client.iopub_channel.get_msg(timeout=0)
        except Empty:
            return False
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        msg_type = msg["header"]["msg_type"]
        if msg_type == "status":
            return msg["content"].get("execution_state") == "idle"
        if outputs is not None:
            outputs.add(msg_type, msg["content"])
        return False

    def _drain(self, msg_id: str, outputs: _Outputs | None) -> None:
        deadline = time.monotonic() + _GRACE
        socket = self.client.iopub_channel.socket
        while time.monotonic() < deadline:
            if not socket.poll(100):
                continue
            if self._take_iopub(msg_id, outputs):
                return

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        with contextlib.suppress(Exception):
            self.manager.shutdown_kernel(now=True)


def _part(cell: NotebookNode) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f" (part {grade_id})" if grade_id else ""


def _short(ename: str, evalue: str) -> str:
    text = f"{ename}: {evalue}" if evalue else ename
    return text if len(text) <= 300 else text[:297] + "..."


def run_notebook(
    nb: NotebookNode,
    *,
    roles: Mapping[int, Role],
    start_kernel: StartKernel,
    exchange_dir: Path,
    cell_timeout: float,
    total_timeout: float,
    output_limit: int,
) -> RunResult:
    """Run the code cells of ``nb`` and judge each test cell.

    Parameters
    ----------
    nb
        The rebuilt notebook; it is not modified (the result holds a copy).
    roles
        ``cell index -> "setup" | "student" | "test"`` for every code cell to run;
        code cells missing from it are not run.
    start_kernel
        ``start_kernel(role) -> (KernelManager, KernelClient)``, a started kernel with
        started channels; ``role`` is ``"student"`` or ``"tests"``.
    exchange_dir
        A folder both kernels see at the same path (for the bridge between them).
    cell_timeout
        Seconds one cell may run before it is interrupted.
    total_timeout
        Seconds the whole notebook may run.
    output_limit
        Bytes of output kept per cell; the notebook keeps at most four times this.

    Returns
    -------
    RunResult
        The executed notebook, a verdict per test cell and the first failure.
    """
    del exchange_dir  # the one-kernel run needs no bridge
    executed = nbformat.from_dict(nb)
    budget = _Budget(4 * output_limit)
    deadline = time.monotonic() + total_timeout
    tests = {
        index: TestResult(False, "not run")
        for index, role in roles.items()
        if role == "test"
    }
    failure: str | None = None
    kernel = _Kernel(*start_kernel("student"))
    try:
        for index, cell in enumerate(executed.cells):
            role = roles.get(index)
            if cell.cell_type != "code" or role is None:
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                failure = failure or "whole-notebook time limit"
                for test in tests.values():
                    if test.message == "not run":
                        test.message = (
                            f"not run: whole-notebook time limit of {total_timeout:g} s"
                        )
                break
            outputs = _Outputs(budget, output_limit)
            run = kernel.execute(
                cell.source, min(cell_timeout, left), outputs, silent=False
            )
            cell.outputs = outputs.notebook_outputs()
            where = f"cell {index}{_part(cell)}"
            reason = {
                "timeout": f"timeout in {where} after {cell_timeout:g} s",
                "dead": f"kernel died in {where}",
            }.get(run.status)
            if reason and failure is None:
                failure = reason
            if role == "test":
                if run.status == "ok":
                    tests[index] = TestResult(True, "passed")
                elif run.status == "error":
                    tests[index] = TestResult(False, _short(run.ename, run.evalue))
                else:
                    tests[index] = TestResult(False, reason or run.status)
            if kernel.dead:
                for test in tests.values():
                    if test.message == "not run":
                        test.message = f"not run: {reason}"
                break
    finally:
        kernel.shutdown()
    return RunResult(executed, tests, failure)
