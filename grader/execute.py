"""Run a rebuilt submission notebook in two kernels and judge its test cells.

:func:`run_notebook` starts two kernels through the caller's ``start_kernel``:

- K_student runs the locked setup cells and the student's cells, in order; it never
  sees a test cell;
- K_tests runs the same locked setup cells and the test cells; no student code ever
  runs there.

Before K_tests runs a cell, the names the cell reads (found in its syntax tree) that
no locked cell binds are brought from K_student through :mod:`grader.bridge` as data
(arrays, numbers, strings, containers of them, Keras models as specs, ``History``
objects, and functions as proxies that run in K_student). A name a locked cell binds
(``np``, ``train_x``, ``model`` in a setup cell...) is always K_tests' own. A test cell
passes when it raises nothing in K_tests.

A setup cell that only draws (its first line is a ``# figure:`` comment, the course's
label for such cells) runs in K_student only, unless a later locked cell reads a name it
binds.

Limits: ``cell_timeout`` per cell (a cell over it is interrupted; a kernel that does
not come back is given up), ``total_timeout`` for the whole notebook, and
``output_limit`` bytes of output kept per cell (four times that per notebook; the rest
is dropped with a note, as it arrives). A student kernel that dies, hangs or sends
garbage only fails the tests that need it, each with a reason.

Output messages cost the grader nothing a kernel can inflate: a thread per kernel reads
its IOPub socket as messages arrive (so nothing queues in the grader), counts their
bytes, drops any that do not answer a request the grader is waiting on without
verifying or parsing it, and kills the kernel once it has sent more than
``iopub_limit`` bytes in the notebook (``IOPUB_LIMIT``, the run fails with "output
flood"); a frame over :data:`MAX_MESSAGE` disconnects it. When the files the kernels
wrote fill their disk cap (see :mod:`grader.sandbox`) the run fails with "disk cap".
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import json
import os
import symtable
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Literal

import nbformat
import zmq
from jupyter_client import KernelClient, KernelManager
from nbformat import NotebookNode

from grader import bridge

Role = Literal["setup", "student", "test"]
StartKernel = Callable[[str], tuple[KernelManager, KernelClient]]

GRACE = 5.0
"""Seconds a kernel gets to answer after an interrupt or at the end of a cell."""
MiB = 1024**2
MAX_MESSAGE = 16 * MiB
"""Largest output message read from a kernel: a frame over it disconnects the kernel
(unread), a message over it is dropped unread."""
IOPUB_LIMIT = 64 * MiB
"""Bytes of output messages one kernel may send in a whole notebook, parsed or not
(training progress, summaries and plots of a course notebook are a few MiB); the
kernel is killed past it."""
IOPUB_QUEUE = 64
"""Output messages queued for the grader (ZeroMQ high-water marks)."""
_MAX_PARENT = 64 * 1024
"""A message whose parent header is larger is not one of the grader's requests."""
_IGNORED = set(dir(builtins)) | {"get_ipython", "display", "In", "Out", "exit", "quit"}
_B = "__import__('sys').modules['_grader_bridge']"


@dataclass
class TestResult:
    """The verdict on one test cell: ``passed`` when it ran and raised nothing."""

    passed: bool
    message: str


@dataclass
class RunResult:
    """What running one notebook gave.

    ``notebook`` is the executed notebook (outputs capped); ``tests`` maps the index of
    every test cell to its verdict; ``failure`` names the first event that cut the run
    short or broke a kernel ("timeout in cell 7 (part count_labels) after 60 s",
    "kernel died in cell 5 ...", "whole-notebook time limit ..."), or is ``None``.
    """

    notebook: NotebookNode
    tests: dict[int, TestResult]
    failure: str | None = None


# --- outputs ---------------------------------------------------------------------


@dataclass
class _Budget:
    """Bytes of output the whole notebook may still keep."""

    left: int


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
        room = min(self.cell_limit - self.kept, self.budget.left)
        if size > room and output["output_type"] == "stream" and room > 0:
            self.dropped += size - room
            output["text"], size = output["text"][:room], room
        if size > room:
            self.dropped += size
            return
        self.kept += size
        self.budget.left -= size
        last = self.items[-1] if self.items else None
        if (
            output["output_type"] == "stream"
            and last is not None
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
            and not last.get("note")
        ):
            last["text"] += output["text"]
        else:
            self.items.append(output)

    def note(self, text: str) -> None:
        """Add a line from the grader (not counted against the caps)."""
        self.items.append(
            {
                "output_type": "stream",
                "name": "stderr",
                "text": f"[grader: {text}]\n",
                "note": True,
            }
        )

    def notebook_outputs(self) -> list[NotebookNode]:
        if self.dropped:
            self.note(f"{self.dropped} more characters of output dropped")
            self.dropped = 0
        return [
            nbformat.from_dict({k: v for k, v in item.items() if k != "note"})
            for item in self.items
        ]


RICH_OUTPUTS = ("text/plain", "image/png", "image/jpeg")
"""What a display may keep: text and pictures. HTML, JavaScript, SVG and Markdown
(which may hold HTML) could run in the feedback page or in formgrader."""


def _text(value: Any) -> str:
    """``value`` as text that can be written as UTF-8 (a lone surrogate becomes "?"),
    without anything that reads as a note of the grader."""
    text = str(value).encode("utf-8", errors="replace").decode("utf-8")
    return text.replace("[grader:", "[grader?:")


def _to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    """The notebook output for a kernel message: its text, capped later by
    :class:`_Outputs`; a display keeps only :data:`RICH_OUTPUTS`, no metadata."""
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": "stderr" if content.get("name") == "stderr" else "stdout",
            "text": _text(content.get("text", "")),
        }
    if msg_type in ("display_data", "execute_result"):
        data = content.get("data")
        data = data if isinstance(data, dict) else {}
        kept = {k: _text(data[k]) for k in RICH_OUTPUTS if isinstance(data.get(k), str)}
        if not kept:
            return None
        output = {"output_type": msg_type, "data": kept, "metadata": {}}
        if msg_type == "execute_result":
            count = content.get("execution_count")
            output["execution_count"] = count if type(count) is int else None
        return output
    if msg_type == "error":
        traceback = content.get("traceback")
        return {
            "output_type": "error",
            "ename": _text(content.get("ename", ""))[:200],
            "evalue": _text(content.get("evalue", "")),
            "traceback": [
                _text(line)
                for line in (traceback if isinstance(traceback, list) else [])
            ],
        }
    return None


def _size(output: dict[str, Any]) -> int:
    """Characters an output holds, all of it counted against the caps."""
    if output["output_type"] == "stream":
        return len(output["text"])
    if output["output_type"] == "error":
        return (
            sum(len(line) for line in output["traceback"])
            + len(output["evalue"])
            + len(output["ename"])
        )
    return sum(len(value) for value in output["data"].values())


# --- one kernel --------------------------------------------------------------------


@dataclass
class _Execution:
    """How one execute request ended: ``status`` is ok, error, timeout or dead."""

    status: Literal["ok", "error", "timeout", "dead"]
    ename: str = ""
    evalue: str = ""
    expressions: dict[str, Any] = field(default_factory=dict)


class _Kernel:
    """One started kernel and the execute loop the grader needs."""

    def __init__(
        self,
        role: str,
        manager: KernelManager,
        client: KernelClient,
        iopub_limit: int = IOPUB_LIMIT,
    ):
        self.role = role
        self.manager = manager
        self.client = client
        self.gone: str | None = None
        self.idle: set[str] = set()
        self.iopub_limit = iopub_limit
        self.received = 0
        """Bytes the kernel sent on IOPub so far (read by the pump thread)."""
        self.flood: str | None = None
        self.wanted: set[str] = set()
        """Requests whose outputs are read; the pump drops every other message."""
        self._stop = threading.Event()
        self._pump_thread: threading.Thread | None = None
        self._start_pump()

    def _start_pump(self) -> None:
        """Read IOPub in a thread; the channel's socket gets only wanted messages."""
        context = self.client.context
        raw = context.socket(zmq.SUB)
        raw.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        raw.setsockopt(zmq.RCVHWM, IOPUB_QUEUE)
        raw.setsockopt(zmq.LINGER, 0)
        raw.setsockopt(zmq.SUBSCRIBE, b"")
        address = f"inproc://iopub-{uuid.uuid4().hex}"
        forward = context.socket(zmq.PAIR)
        forward.setsockopt(zmq.SNDHWM, IOPUB_QUEUE)
        forward.setsockopt(zmq.LINGER, 0)
        forward.bind(address)
        kept = context.socket(zmq.PAIR)
        kept.setsockopt(zmq.RCVHWM, IOPUB_QUEUE)
        kept.setsockopt(zmq.LINGER, 0)
        kept.connect(address)
        raw.connect(self.client._make_url("iopub"))
        channel = self.client.iopub_channel
        old, channel.socket = channel.socket, kept
        with contextlib.suppress(Exception):
            old.close(linger=0)
        self._pump_thread = threading.Thread(
            target=self._pump,
            args=(raw, forward),
            name=f"iopub-{self.role}",
            daemon=True,
        )
        self._pump_thread.start()

    def _pump(self, raw: zmq.Socket, forward: zmq.Socket) -> None:
        """Read every message the kernel publishes; forward those of wanted requests.

        Frames are counted as they arrive (a message of endless frames included) and
        never parsed, except a wanted message's small parent header.
        """
        try:
            while not self._stop.is_set():
                if not raw.poll(100):
                    continue
                frames: list[zmq.Frame] = []
                size, whole = 0, True
                while True:
                    frame = raw.recv(copy=False)
                    size += len(frame)
                    if self.received + size > self.iopub_limit:
                        self._flooded()
                        return
                    whole = whole and size <= MAX_MESSAGE
                    if whole:
                        frames.append(frame)
                    else:
                        frames.clear()
                    if not raw.getsockopt(zmq.RCVMORE):
                        break
                self.received += size
                if whole and self._is_wanted(frames):
                    with contextlib.suppress(zmq.Again):
                        forward.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            pass
        finally:
            raw.close(linger=0)
            forward.close(linger=0)

    def _is_wanted(self, frames: list[zmq.Frame]) -> bool:
        """Whether a message's parent is a request the grader waits on."""
        marks = [
            i
            for i, frame in enumerate(frames)
            if len(frame) == 9 and frame.bytes == b"<IDS|MSG>"
        ]
        if not marks:
            return False
        index = marks[0]
        if len(frames) < index + 6 or len(frames[index + 3]) > _MAX_PARENT:
            return False
        try:
            parent = json.loads(frames[index + 3].bytes)
        except ValueError:
            return False
        return isinstance(parent, dict) and parent.get("msg_id") in self.wanted

    def _flooded(self) -> None:
        """Kill a kernel that sent more output than a notebook may (from the pump)."""
        self.flood = (
            f"was stopped for an output flood (more than "
            f"{self.iopub_limit / MiB:g} MiB of output messages)"
        )
        with contextlib.suppress(Exception):
            self.manager.provisioner.process.kill()  # type: ignore[union-attr]

    def send(self, code: str, *, silent: bool = True, **options: Any) -> str:
        # its outputs are wanted before the kernel can send any
        header = self.client.session.msg_header("execute_request")
        self.wanted.add(header["msg_id"])
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
            **options,
        }
        message = self.client.session.msg("execute_request", content, header=header)
        self.client.shell_channel.send(message)
        return header["msg_id"]

    def run(
        self,
        code: str,
        timeout: float,
        outputs: _Outputs | None = None,
        *,
        silent: bool = True,
        expressions: dict[str, str] | None = None,
        beside: tuple[_Kernel, str, _Outputs | None] | None = None,
    ) -> _Execution:
        """Run ``code`` and wait for it (see :meth:`wait`)."""
        if self.gone:
            return _Execution("dead")
        msg_id = self.send(code, silent=silent, user_expressions=expressions or {})
        return self.wait(msg_id, timeout, outputs, beside=beside)

    def wait(
        self,
        msg_id: str,
        timeout: float,
        outputs: _Outputs | None,
        *,
        beside: tuple[_Kernel, str, _Outputs | None] | None = None,
    ) -> _Execution:
        """Wait for the reply to ``msg_id`` and its outputs; interrupt at ``timeout``.

        ``beside`` is another kernel's request whose outputs are collected meanwhile.
        A kernel that does not answer an interrupt within GRACE seconds is given up.
        Afterwards the request's outputs are no longer wanted.
        """
        try:
            return self._wait(msg_id, timeout, outputs, beside)
        finally:
            self.wanted.discard(msg_id)

    def _wait(
        self,
        msg_id: str,
        timeout: float,
        outputs: _Outputs | None,
        beside: tuple[_Kernel, str, _Outputs | None] | None,
    ) -> _Execution:
        reply = self._reply(msg_id, time.monotonic() + timeout, outputs, beside)
        if reply is None and not self.gone:
            self.interrupt()
            late = self._reply(msg_id, time.monotonic() + GRACE, outputs, beside)
            if late is None and not self.gone:
                self.gone = "stopped answering after an interrupt"
                self.shutdown()
            return _Execution("timeout")
        if reply is None:
            return _Execution("dead")
        self._drain(msg_id, outputs)
        status = reply.get("status")
        expressions = reply.get("user_expressions") or {}
        if status == "ok":
            return _Execution("ok", expressions=expressions)
        return _Execution(
            "error", str(reply.get("ename", "")), str(reply.get("evalue", ""))
        )

    def interrupt(self) -> None:
        """Ask the kernel to interrupt itself (an ``interrupt_request`` message).

        A message, not a signal from here: a sandboxed kernel is in its own process
        namespace, and a signal would reach only the sandbox's launcher.
        """
        try:
            message = self.client.session.msg("interrupt_request", content={})
            self.client.control_channel.send(message)
        except Exception:
            with contextlib.suppress(Exception):
                self.manager.interrupt_kernel()

    def _reply(
        self,
        msg_id: str,
        deadline: float,
        outputs: _Outputs | None,
        beside: tuple[_Kernel, str, _Outputs | None] | None,
    ) -> dict[str, Any] | None:
        shell = self.client.shell_channel.socket
        iopub = self.client.iopub_channel.socket
        poller = zmq.Poller()
        poller.register(shell, zmq.POLLIN)
        poller.register(iopub, zmq.POLLIN)
        other = None
        if beside is not None and not beside[0].gone:
            other = beside[0].client.iopub_channel.socket
            poller.register(other, zmq.POLLIN)
        while True:
            if self.flood:
                self.gone = self.flood
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready = dict(poller.poll(min(left, 1.0) * 1000))
            if not ready:
                if not self.manager.is_alive():
                    self.gone = self.flood or f"died ({_exit_reason(self.manager)})"
                    return None
                continue
            if iopub in ready:
                self._take_iopub(msg_id, outputs)
            if other is not None and other in ready and beside is not None:
                beside[0]._take_iopub(beside[1], beside[2])
            if shell in ready:
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
            if msg["content"].get("execution_state") == "idle":
                self.idle.add(msg_id)
                return True
            return False
        if outputs is not None:
            outputs.add(msg_type, msg["content"])
        return False

    def _drain(self, msg_id: str, outputs: _Outputs | None) -> bool:
        """Collect the last outputs of ``msg_id``; False if its end never came."""
        deadline = time.monotonic() + GRACE
        socket = self.client.iopub_channel.socket
        while msg_id not in self.idle and time.monotonic() < deadline:
            if self.flood:
                break
            if socket.poll(50):
                self._take_iopub(msg_id, outputs)
        if msg_id in self.idle:
            self.idle.discard(msg_id)
            return True
        return False

    def shutdown(self) -> None:
        self._stop.set()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        with contextlib.suppress(Exception):
            self.manager.shutdown_kernel(now=True)


def _exit_reason(manager: KernelManager) -> str:
    code = None
    with contextlib.suppress(Exception):
        code = manager.provisioner.process.poll()  # type: ignore[union-attr]
    if code is None:
        return "no exit status"
    if code in (-9, 137):
        return "killed: probably the memory limit"
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


# --- which names a cell reads and binds ----------------------------------------------


def _table(source: str) -> tuple[symtable.SymbolTable | None, list[str]]:
    """The cell's symbol table (IPython syntax turned into Python) and the code its
    magics (``%time f(x)``, ``%%timeit``) run."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        code = TransformerManager().transform_cell(source)
        tree = ast.parse(code)
        table = symtable.symtable(code, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return None, []
    magics = [
        node.args[-1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("run_line_magic", "run_cell_magic")
        and node.args
        and isinstance(node.args[-1], ast.Constant)
        and isinstance(node.args[-1].value, str)
    ]
    return table, magics


def names_read(source: str) -> set[str]:
    """Global names a cell reads, at top level, inside its functions and classes, and
    in the code its magics run."""
    top, magics = _table(source)
    if top is None:
        return set()
    names = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        names |= {s.get_name() for s in table.get_symbols() if s.is_global()}
    for code in magics:
        names |= names_read(code)
    return names


def names_bound(source: str) -> set[str]:
    """Global names a cell binds (assignment, import, def, class, for, with...)."""
    top, _ = _table(source)
    if top is None:
        return set()
    names = {
        s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()
    }
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        names |= {
            s.get_name()
            for s in table.get_symbols()
            if s.is_declared_global() and s.is_assigned()
        }
    return names


# --- the run -------------------------------------------------------------------------


def _part(cell: NotebookNode) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f" (part {grade_id})" if grade_id else ""


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _boot(source: str, then: str) -> str:
    """Code that loads the bridge as module ``_grader_bridge`` and runs ``then``."""
    return (
        "def _grader_boot():\n"
        "    import sys, types\n"
        "    module = types.ModuleType('_grader_bridge')\n"
        "    sys.modules['_grader_bridge'] = module\n"
        f"    exec(compile({source!r}, 'grader/bridge.py', 'exec'), module.__dict__)\n"
        f"    {then}\n"
        "_grader_boot()\n"
        "del _grader_boot\n"
    )


class _Run:
    """The state of one notebook's run in its two kernels."""

    def __init__(
        self,
        nb: NotebookNode,
        roles: Mapping[int, Role],
        student: _Kernel,
        tests: _Kernel,
        socket_path: str,
        cell_timeout: float,
        total_timeout: float,
        output_limit: int,
    ) -> None:
        self.nb = nb
        self.roles = roles
        self.student = student
        self.tests = tests
        self.socket_path = socket_path
        self.cell_timeout = cell_timeout
        self.total_timeout = total_timeout
        self.deadline = time.monotonic() + total_timeout
        self.output_limit = output_limit
        self.budget = _Budget(4 * output_limit)
        self.failure: str | None = None
        self.student_gone = ""
        self.disk_full = False
        self.verdicts = {
            i: TestResult(False, "not run") for i, r in roles.items() if r == "test"
        }
        self.locked: set[str] = set()
        self.figures: set[int] = set()
        read_later: set[str] = set()
        for index in sorted(roles, reverse=True):
            if index >= len(nb.cells) or roles[index] == "student":
                continue
            source = nb.cells[index].source
            bound = names_bound(source)
            self.locked |= bound
            if (
                roles[index] == "setup"
                and source.lstrip().startswith("# figure:")
                and not bound & read_later
            ):
                self.figures.add(index)
            else:
                read_later |= names_read(source)

    def fail(self, reason: str) -> None:
        self.failure = self.failure or reason

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def start(self) -> None:
        """Load the bridge in both kernels; K_tests listens, K_student will connect."""
        source = Path(bridge.__file__).read_text()
        path = self.socket_path
        run = self.tests.run(
            _boot(source, f"module.TESTS = module.TestSide({path!r})"), self.left()
        )
        if run.status != "ok":
            raise RuntimeError(f"the test kernel could not start the bridge: {run}")
        run = self.student.run(_boot(source, "pass"), self.left())
        if run.status != "ok":
            self.student_gone = f"your notebook's kernel could not start ({run.status})"

    def run(self) -> None:
        for index, cell in enumerate(self.nb.cells):
            role = self.roles.get(index)
            if cell.cell_type != "code" or role is None:
                continue
            if self.left() <= 0:
                self.fail(
                    f"whole-notebook time limit of {self.total_timeout:g} s "
                    f"reached before cell {index}{_part(cell)}"
                )
                break
            if self.tests.gone and role != "student":
                self.fail(f"the test kernel {self.tests.gone} before cell {index}")
                break
            outputs = _Outputs(self.budget, self.output_limit)
            in_tests = role == "test" or (role == "setup" and index not in self.figures)
            if role == "student" or (role == "setup" and not in_tests):
                self.run_student(index, cell, outputs)
            elif role == "setup":
                # the cell shows what the TEST kernel computed (that is what is
                # graded); of K_student's run only the grader's notes are kept
                theirs = _Outputs(_Budget(self.output_limit), self.output_limit)
                self.run_student(index, cell, theirs)
                outputs.items += [item for item in theirs.items if item.get("note")]
            if in_tests:
                self.run_tests(index, cell, role, outputs)
            self.check_disk(index, cell, outputs)
            cell.outputs = outputs.notebook_outputs()
        reason = self.failure or "the run stopped early"
        for verdict in self.verdicts.values():
            if verdict.message == "not run":
                verdict.message = f"not run: {reason}"

    def check_disk(self, index: int, cell: NotebookNode, outputs: _Outputs) -> None:
        """Fail the run once the kernels' files fill their disk cap (the tmpfs that
        holds the exchange folder, see :mod:`grader.sandbox`)."""
        if self.disk_full:
            return
        full = _disk_full(Path(self.socket_path).parent)
        if full:
            self.disk_full = True
            self.fail(f"disk cap {full} in cell {index}{_part(cell)}")
            outputs.note(f"disk cap {full}: files written now fail with ENOSPC")

    def run_student(self, index: int, cell: NotebookNode, outputs: _Outputs) -> None:
        """Run a setup or student cell in K_student."""
        if self.student_gone:
            outputs.note(f"not run: {self.student_gone}")
            return
        where = f"cell {index}{_part(cell)}"
        timeout = min(self.cell_timeout, self.left())
        run = self.student.run(cell.source, timeout, outputs, silent=False)
        if run.status == "timeout":
            self.fail(f"timeout in {where} after {timeout:g} s")
            outputs.note(f"interrupted after {timeout:g} s")
        if self.student.gone:
            self.student_gone = f"your notebook's kernel {self.student.gone} in {where}"
            self.fail(f"kernel {self.student.gone} in {where}")
            outputs.note(self.student_gone)

    def run_tests(
        self, index: int, cell: NotebookNode, role: Role, outputs: _Outputs
    ) -> None:
        """Run a setup or test cell in K_tests, with K_student answering its reads."""
        names = sorted(
            name
            for name in names_read(cell.source) - self.locked - _IGNORED
            if not name.startswith("_")
        )
        timeout = min(self.cell_timeout, self.left())
        serving = None
        if not self.student_gone:
            serving = self.student.send(
                f"{_B}.serve({self.socket_path!r}, globals())", silent=True
            )
        kept = outputs
        beside = (self.student, serving, kept) if serving else None
        begin = self.tests.run(
            f"{_B}.TESTS.begin({names!r}, globals(), {timeout!r}, "
            f"{self.student_gone!r})",
            timeout + GRACE,
            expressions={"problems": f"{_B}.TESTS.problems_text()"},
            beside=beside,
        )
        problems = _expression(begin.expressions.get("problems"))
        run = self.tests.run(
            cell.source,
            timeout + GRACE,
            kept,
            silent=False,
            beside=beside,
        )
        self.tests.run(f"{_B}.TESTS.end()", GRACE, beside=beside)
        if serving:
            self.settle_student(serving, kept, index, cell)
        where = f"cell {index}{_part(cell)}"
        if run.status == "timeout":
            self.fail(f"timeout in {where} after {timeout:g} s")
        if self.tests.gone:
            self.fail(f"the test kernel {self.tests.gone} in {where}")
        message = {
            "ok": "passed",
            "error": f"{run.ename}: {run.evalue}" if run.evalue else run.ename,
            "timeout": f"timeout after {timeout:g} s",
            "dead": f"the test kernel {self.tests.gone}",
        }[run.status]
        if run.status != "ok" and problems:
            message += f" ({problems})"
        if role == "test":
            self.verdicts[index] = TestResult(run.status == "ok", _short(message))
        elif run.status != "ok" and outputs is not None:
            outputs.note(f"in the test kernel this cell failed: {_short(message)}")

    def settle_student(
        self, serving: str, outputs: _Outputs | None, index: int, cell: NotebookNode
    ) -> None:
        """Wait for K_student's ``serve`` to return; interrupt it if it hangs."""
        run = self.student.wait(serving, GRACE, outputs)
        where = f"cell {index}{_part(cell)}"
        if run.status == "timeout":
            self.fail(f"your code did not return in time in {where}")
        if self.student.gone and not self.student_gone:
            self.student_gone = f"your notebook's kernel {self.student.gone} in {where}"
            self.fail(f"kernel {self.student.gone} in {where}")


def _disk_full(folder: Path) -> str | None:
    """How the filesystem of ``folder`` is full (no room for 1 MiB, or no free
    inode), or None."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    size = stat.f_blocks * stat.f_frsize
    if stat.f_bavail * stat.f_frsize < min(MiB, size // 100 + 1):
        return f"of {size / MiB:g} MiB reached"
    if stat.f_files and stat.f_favail == 0:
        return f"of {stat.f_files} files reached"
    return None


def _expression(result: Any) -> str:
    """The text of a user expression the grader asked K_tests for."""
    if not isinstance(result, dict) or result.get("status") != "ok":
        return ""
    text = result.get("data", {}).get("text/plain", "")
    with contextlib.suppress(ValueError, SyntaxError):
        value = ast.literal_eval(text)
        return value if isinstance(value, str) else ""
    return ""


def run_notebook(
    nb: NotebookNode,
    *,
    roles: Mapping[int, Role],
    start_kernel: StartKernel,
    exchange_dir: Path,
    cell_timeout: float,
    total_timeout: float,
    output_limit: int,
    iopub_limit: int = IOPUB_LIMIT,
) -> RunResult:
    """Run ``nb``'s code cells in K_student and K_tests and judge each test cell.

    Parameters
    ----------
    nb
        The rebuilt notebook; it is not modified (the result holds a copy).
    roles
        ``cell index -> "setup" | "student" | "test"`` for every code cell to run;
        code cells missing from it are not run.
    start_kernel
        ``start_kernel(role) -> (KernelManager, KernelClient)``: a started kernel with
        started channels, for ``role`` ``"student"`` or ``"tests"``. The two are
        started at the same time, from two threads.
    exchange_dir
        A folder both kernels see at the same absolute path; the bridge's unix socket
        is made there (its path must stay under 100 characters).
    cell_timeout
        Seconds one cell may run before it is interrupted.
    total_timeout
        Seconds the whole notebook may run, kernel starts included.
    output_limit
        Characters of output kept per cell; the notebook keeps at most four times this.
    iopub_limit
        Bytes of output messages each kernel may send in the whole notebook (kept or
        not); a kernel that sends more is killed ("output flood").

    Returns
    -------
    RunResult
        The executed notebook, a verdict per test cell and the first failure.

    Example
    -------
    >>> result = run_notebook(nb, roles={3: "setup", 5: "student", 6: "test"},
    ...     start_kernel=local_kernel, exchange_dir=Path("/tmp/x"), cell_timeout=60,
    ...     total_timeout=600, output_limit=100_000)  # doctest: +SKIP
    >>> result.tests[6].passed  # doctest: +SKIP
    True
    """
    socket_path = str(Path(exchange_dir) / f"b{uuid.uuid4().hex[:8]}.sock")
    if len(socket_path.encode()) > 100:
        raise ValueError(
            f"exchange_dir {exchange_dir} is too long for a unix socket path; "
            "use a shorter folder, such as one under /tmp"
        )
    executed = nbformat.from_dict(nb)
    started = time.monotonic()
    kernels: list[_Kernel] = []
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(start_kernel, role) for role in ("student", "tests")]
        errors = []
        for future, role in zip(futures, ("student", "tests"), strict=True):
            try:
                kernels.append(_Kernel(role, *future.result(), iopub_limit))
            except Exception as error:
                errors.append(error)
    try:
        if errors:
            raise errors[0]
        run = _Run(
            executed,
            roles,
            *kernels,
            socket_path,
            cell_timeout,
            total_timeout,
            output_limit,
        )
        run.deadline = started + total_timeout
        run.start()
        run.run()
        return RunResult(executed, run.verdicts, run.failure)
    finally:
        for kernel in kernels:
            kernel.shutdown()
        Path(socket_path).unlink(missing_ok=True)
