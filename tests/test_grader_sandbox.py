"""The grading kernel's sandbox (grader/sandbox.py): what a kernel can see and use.

The kernels here run plain Python (no TensorFlow), so each test takes seconds. When the
sandbox cannot start on this machine the slow tests fail with the reason: grading would
refuse to run here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import cli, sandbox

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024**2


def run(client, code: str, timeout: float = 60) -> tuple[str, str | None]:
    """Run ``code`` in a kernel: (its stdout, the error name or None)."""
    out, error = [], []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            error.append(msg["content"]["ename"])

    client.execute_interactive(code, timeout=timeout, output_hook=hook)
    return "".join(out), error[0] if error else None


@pytest.fixture(scope="module")
def box():
    problems = sandbox.check()
    assert not problems, "the sandbox cannot start here:\n" + "\n".join(problems)
    with sandbox.Sandbox(
        limits=sandbox.Limits(memory=256 * MiB, pids=64, file_size=MiB)
    ) as box:
        yield box


@pytest.fixture(scope="module")
def kernel(box):
    return box.start_kernel("student")[1]


@pytest.mark.slow
def test_kernel_sees_no_repository_gradebook_or_home(kernel, tmp_path: Path) -> None:
    secret = tmp_path / "gradebook.db"
    secret.write_text("grades")
    paths = [
        ROOT / "notebooks" / "exercises" / "source",
        ROOT / "README.md",
        ROOT / "tests",
        secret,
        Path.home() / ".bashrc",
        Path("/etc/shadow"),
    ]
    code = (
        "import os\n"
        f"paths = {[str(p) for p in paths]}\n"
        "print([p for p in paths if os.path.exists(p) and os.path.getsize(p)])"
    )
    out, error = run(kernel, code)
    assert error is None
    assert out.strip() == "[]"


@pytest.mark.slow
def test_kernel_works_in_an_empty_home_with_an_empty_ipython_profile(kernel) -> None:
    out, error = run(
        kernel,
        "import os\n"
        "ip = get_ipython()\n"
        "print(os.getcwd(), os.environ['HOME'], sorted(os.listdir('.')))\n"
        "print(ip.profile_dir.location)\n"
        "print(sorted(os.listdir(ip.profile_dir.startup_dir)))",
    )
    assert error is None
    lines = out.splitlines()
    assert lines[0] == f"{sandbox.HOME} {sandbox.HOME} ['.ipython']"
    assert lines[1].startswith(f"{sandbox.HOME}/.ipython/")
    assert lines[2] == "['README']", "IPython's own README, no startup file"


@pytest.mark.slow
def test_python_environment_is_read_only(kernel) -> None:
    out, error = run(
        kernel,
        "import numpy, os\n"
        "path = os.path.join(os.path.dirname(numpy.__file__), 'evil.py')\n"
        "try:\n"
        "    open(path, 'w')\n"
        "except OSError as e:\n"
        "    print(e.errno)",
    )
    assert error is None
    assert out.strip() == "30"  # EROFS: read-only file system


@pytest.mark.slow
def test_kernel_has_no_network(kernel) -> None:
    out, error = run(
        kernel,
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(3)\n"
        "try:\n"
        "    s.connect(('1.1.1.1', 53))\n"
        "    print('connected')\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)",
    )
    assert error is None
    assert out.startswith("refused")


@pytest.mark.slow
def test_kernel_cannot_see_or_signal_the_grader(kernel) -> None:
    out, error = run(
        kernel,
        "import os, signal\n"
        f"print(os.path.exists('/proc/{os.getpid()}/cmdline'))\n"
        "try:\n"
        f"    os.kill({os.getpid()}, signal.SIGKILL)\n"
        "except ProcessLookupError:\n"
        "    print('no such process')\n"
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]) < 10)",
    )
    assert error is None
    assert out.split() == ["False", "no", "such", "process", "True"]


@pytest.mark.slow
def test_file_size_is_capped(kernel) -> None:
    out, error = run(
        kernel,
        "try:\n"
        "    open('big', 'wb').write(b'x' * (2 * 1024**2))\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)",
    )
    assert error is None
    assert out.strip() == "refused 27"  # EFBIG


@pytest.mark.slow
def test_process_count_is_capped(kernel) -> None:
    out, error = run(
        kernel,
        "import subprocess\n"
        "started = []\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        started.append(subprocess.Popen(['sleep', '30']))\n"
        "except OSError as e:\n"
        "    print('refused after', len(started))\n"
        "for p in started:\n"
        "    p.kill()",
    )
    assert error is None
    assert out.startswith("refused after")
    assert int(out.split()[-1]) < 64


@pytest.mark.slow
def test_busy_forked_children_share_the_kernels_cpu_quota(box) -> None:
    """However many busy processes a kernel forks, together they get ``cpus`` cores:
    4 children that each burn 0.6 CPU-seconds need about 2.4 s under a 1-core quota
    (a busy machine only makes them slower), where 2 free cores would take 1.2 s."""
    _, busy = box.start_kernel("busy")
    out, error = run(
        busy,
        "import os, time\n"
        "start = time.monotonic()\n"
        "children = []\n"
        "for _ in range(4):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        end = time.process_time() + 0.6\n"
        "        while time.process_time() < end:\n"
        "            pass\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "for pid in children:\n"
        "    os.waitpid(pid, 0)\n"
        "wall = time.monotonic() - start\n"
        "print(os.times().children_user + os.times().children_system, wall)",
    )
    assert error is None, out
    cpu_seconds, wall = map(float, out.split())
    assert cpu_seconds >= 2.3, "the children burnt what they were asked to"
    assert cpu_seconds / wall <= 1.2, f"{cpu_seconds} CPU-s in {wall} s"
    folder = box.cgroups["busy"].dirs["cpu"]
    period = int((folder / "cpu.cfs_period_us").read_text())
    assert int((folder / "cpu.cfs_quota_us").read_text()) == period, "1 core"


@pytest.mark.slow
def test_the_cpu_quota_is_the_workers_share_of_cores_and_at_least_one() -> None:
    assert not sandbox.check(), sandbox.check()
    for cpus, cores in ((0.25, 1), (1, 1), (2, 2)):
        cgroup = sandbox.Cgroup(
            f"grade-test-cpu-{os.getpid()}", sandbox.Limits(cpus=cpus)
        )
        try:
            folder = cgroup.dirs["cpu"]
            period = int((folder / "cpu.cfs_period_us").read_text())
            assert int((folder / "cpu.cfs_quota_us").read_text()) == cores * period
        finally:
            cgroup.remove()
        assert not folder.exists()


@pytest.mark.slow
def test_a_shared_mapping_beyond_the_memory_cap_kills_the_kernel(box) -> None:
    """RLIMIT_DATA does not count MAP_SHARED pages; the cgroup does."""
    manager, client = box.start_kernel("hog")
    code = (
        "import mmap\n"
        "m = mmap.mmap(-1, 1024**3, flags=mmap.MAP_SHARED)\n"
        "for i in range(0, 1024**3, 4096):\n"
        "    m[i] = 1\n"
        "print('survived')"
    )
    client.execute(code)
    for _ in range(600):
        if not manager.is_alive():
            break
        import time

        time.sleep(0.1)
    assert not manager.is_alive(), "a 1 GiB shared mapping under a 256 MiB cap"
    assert box.cgroups["hog"].oom_killed()
    assert box.oom_killed()


@pytest.mark.slow
def test_kernels_of_one_submission_share_only_the_exchange_folder(box) -> None:
    student = box.kernels["student"][1]
    _, tests = box.start_kernel("tests")
    exchange = box.exchange_dir
    out, error = run(
        student,
        f"open('{exchange}/hello', 'w').write('hi')\n"
        "open('mine', 'w').write('secret')\n"
        "print('ok')",
    )
    assert (error, out.strip()) == (None, "ok")
    out, error = run(
        tests,
        f"import os\nprint(open('{exchange}/hello').read(), os.path.exists('mine'))",
    )
    assert (error, out.split()) == (None, ["hi", "False"])


def test_check_names_a_missing_bwrap_and_how_to_install_it() -> None:
    problems = sandbox.check(bwrap="/nonexistent/bwrap")
    assert any(
        "bwrap" in problem and "apt-get install bubblewrap" in problem
        for problem in problems
    ), problems


def test_check_names_a_missing_cgroup_controller(monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "_cgroup_v1_dirs", lambda controller: None)
    problems = sandbox.check()
    assert any("cgroup v1 'memory'" in problem for problem in problems), problems
    assert any("cgroup v1 'pids'" in problem for problem in problems), problems
    with pytest.raises(sandbox.SandboxUnavailable, match="--no-sandbox"):
        sandbox.require()


def test_check_names_a_missing_cpu_controller_and_grading_refuses(monkeypatch) -> None:
    real = sandbox._cgroup_v1_dirs
    monkeypatch.setattr(
        sandbox,
        "_cgroup_v1_dirs",
        lambda controller: None if controller == "cpu" else real(controller),
    )
    problems = sandbox.check()
    assert any(
        "no cgroup v1 'cpu' controller is mounted" in problem for problem in problems
    ), problems
    with pytest.raises(sandbox.SandboxUnavailable, match="'cpu' controller"):
        sandbox.require()


def test_check_refuses_other_systems(monkeypatch) -> None:
    monkeypatch.setattr(sandbox.platform, "system", lambda: "Darwin")
    (problem,) = sandbox.check()
    assert "needs Linux" in problem and "Darwin" in problem


def test_grade_stops_before_running_anything_without_a_sandbox(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setattr(sandbox, "check", lambda bwrap=None: ["no bwrap here"])
    status = cli.main(["grade", "--course", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert "grading stopped" in err and "no bwrap here" in err
    assert list(tmp_path.iterdir()) == [], "nothing was released, run or written"


def test_no_sandbox_is_an_explicit_documented_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "--no-sandbox" in result.stdout
    assert "trusted notebooks only" in " ".join(result.stdout.split())


@pytest.mark.slow
def test_a_kernel_started_from_a_short_lived_thread_keeps_running(box) -> None:
    """bwrap's --die-with-parent follows the thread that started it, not the process."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        manager, client = pool.submit(box.start_kernel, "threaded").result()
    out, error = run(client, "print(6 * 7)")
    assert (error, out.strip()) == (None, "42")
    assert manager.is_alive()


@pytest.mark.slow
def test_a_kernel_that_fills_its_disk_cap_fails_only_its_own_run(tmp_path) -> None:
    """Home, connection and exchange folders share one tmpfs of ``Limits.disk``: a
    kernel that writes more gets ENOSPC (not the host's disk) and the run fails with
    the disk cap named."""
    import nbformat

    from grader.execute import run_notebook

    fill = (
        "import os\n"
        "written = 0\n"
        "folders = ['.', 'deep', os.environ['EXCHANGE']]\n"
        "os.makedirs('deep', exist_ok=True)\n"
        "try:\n"
        "    for n in range(64):\n"
        "        with open(f'{folders[n % 3]}/f{n}', 'wb') as f:\n"
        "            f.write(b'x' * 1024**2)\n"
        "        written += 1\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)\n"
        "print('written', written)"
    )
    limits = sandbox.Limits(memory=256 * MiB, pids=64, disk=16 * MiB, files=500)
    with sandbox.Sandbox(limits=limits) as box:
        nb = nbformat.v4.new_notebook()
        cells = [
            ("setup", "base = 2"),
            (
                "student",
                f"import os\nos.environ['EXCHANGE'] = {str(box.exchange_dir)!r}",
            ),
            ("student", fill),
            ("test", "assert base == 2"),
        ]
        nb.cells = [nbformat.v4.new_code_cell(source) for _, source in cells]
        result = run_notebook(
            nb,
            roles={index: role for index, (role, _) in enumerate(cells)},
            start_kernel=box.start_kernel,
            exchange_dir=box.exchange_dir,
            cell_timeout=60,
            total_timeout=300,
            output_limit=20_000,
        )
    out = "".join(o.get("text", "") for o in result.notebook.cells[2].outputs)
    assert "refused 28" in out, out  # ENOSPC
    assert int(out.split("written ")[1].split()[0]) < 16, out
    assert result.failure == "disk cap of 16 MiB reached in cell 2", result.failure
    assert result.tests[3].passed, "the test kernel still works"


@pytest.mark.slow
def test_kernels_import_the_bound_copy_of_the_course_packages(
    monkeypatch, tmp_path: Path
) -> None:
    """Grading from another checkout: the kernel imports the ``course_utils`` the
    grader found and bound, not the one an editable install points to."""
    copy = tmp_path / "checkout" / "course_utils"
    copy.mkdir(parents=True)
    (copy / "__init__.py").write_text("WHERE = 'the other checkout'\n")
    monkeypatch.delitem(sys.modules, "course_utils", raising=False)
    monkeypatch.syspath_prepend(str(copy.parent))
    limits = sandbox.Limits(memory=256 * MiB, pids=64)
    with sandbox.Sandbox(limits=limits, packages=("course_utils", "grader")) as box:
        _, client = box.start_kernel("student")
        out, error = run(
            client,
            "import course_utils, grader\n"
            "print(course_utils.WHERE)\n"
            "print(grader.__file__)",
        )
    assert error is None, out
    assert out.splitlines() == ["the other checkout", str(ROOT / "grader/__init__.py")]


# Replies a kernel sends on its shell channel unasked, validly signed with the key it
# knows, 8 MiB each: unread (the grader waits on the other kernel), they queue up.
SHELL_FLOOD = """
import hashlib, hmac, json
kernel = get_ipython().kernel
ident = kernel._parent_ident["shell"]
ident = ident[0] if isinstance(ident, list) else ident
big = b"[" + b"0," * (4 * 1024**2 - 1) + b"0]"
header = json.dumps({"msg_id": "f", "msg_type": "execute_reply", "username": "u",
                     "session": kernel.session.session, "version": "5.3",
                     "date": "2024-01-01T00:00:00Z"}).encode()
content = b'{"status": "ok"}'
signature = hmac.new(kernel.session.key, digestmod=hashlib.sha256)
for part in (header, b"{}", big, content):
    signature.update(part)
frames = [ident, b"<IDS|MSG>", signature.hexdigest().encode(), header, b"{}", big,
          content]
for _ in range(60):
    kernel.shell_stream.socket.send_multipart(frames, copy=False)
"""


@pytest.mark.slow
def test_messages_a_kernel_sends_unasked_queue_only_a_few_in_the_grader(box) -> None:
    """60 unread 8 MiB replies on the shell channel grew a grader by 480 MiB (seen
    with jupyter_client's defaults); its sockets now hold CHANNEL_QUEUE of them."""
    import time

    def rss() -> int:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) * 1024

    _, client = box.start_kernel("shell-flood")
    before = rss()
    client.execute(SHELL_FLOOD)
    peak, started = before, time.monotonic()
    while time.monotonic() - started < 8:
        time.sleep(0.2)
        peak = max(peak, rss())
    grown = peak - before
    assert grown < (sandbox.CHANNEL_QUEUE + 4) * 8 * MiB, f"grew {grown / MiB:.0f} MiB"
