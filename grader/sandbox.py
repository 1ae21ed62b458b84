"""The operating-system sandbox every grading kernel runs in.

This docstring is the grader's security boundary. Each kernel (a submission's student
kernel and its test kernel, see :mod:`grader.execute`) is started by bubblewrap
(``bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL``) inside its own
cgroup, and sees:

- its own mount, process, network, IPC, UTS and user namespaces: no network but a
  loopback of its own, no process outside the sandbox to see or signal, no capability;
- a fresh, empty working folder and HOME (``/home/student``), an empty IPython profile,
  a private ``/tmp``, a minimal ``/dev`` and its own ``/proc``;
- read-only: the system folders (``/usr``, ``/etc``...), the Python installation and
  virtual environment that run the kernel, and the folders of the packages students may
  import from outside it (``course_utils``);
- read-write: only its working folder and one exchange folder that the grader shares
  between the two kernels of the same submission (the bridge's socket) and the kernel's
  connection folder (its ZeroMQ sockets are unix socket files there, so the grader talks
  to a kernel that has no network);
- on ``PYTHONPATH``, first: the parents of the package folders bound read-only, so the
  kernel imports exactly those copies (not another checkout an editable install
  points to).

Disk: those read-write host folders all live in one folder per submission
(:attr:`Sandbox.root`). Grading as root, it is a tmpfs of ``Limits.disk`` bytes and
``Limits.files`` files, mounted for the submission and unmounted after it: whatever
its kernels write, they never fill the host's disk, and a kernel that fills it gets
``ENOSPC`` (the run's failure then names the disk cap). Grading as another user, that
folder is under ``/dev/shm`` (a tmpfs) where it exists. Either way tmpfs pages count
against the memory cap of the kernel that wrote them. Its ``/tmp`` and ``/run`` are
private tmpfs of ``Limits.disk`` bytes each.

Nothing else of the host exists inside: not ``source/`` (solutions, hidden tests),
the gradebook, ``submitted/``, ``autograded/``, other students' work, the repository
or the home folders. A cgroup (v1) caps the kernel's memory, swap included, which
counts every page it touches (heap, shared mappings, tmpfs files), the number of
its processes and its CPU time (a CFS quota of ``Limits.cpus`` cores, at least one:
however many busy processes it forks, it cannot starve other submissions);
``RLIMIT_FSIZE`` caps the size of a file it writes, the tmpfs above all of them. The
grader kills the whole cgroup when a notebook exceeds its wall-clock limit. Scores are
computed and written by the grader process, outside any sandbox.

What it needs: Linux, ``bwrap`` (Debian/Ubuntu ``apt-get install bubblewrap``), user
namespaces allowed (or root), and writable cgroup v1 memory, pids and cpu hierarchies
(``/sys/fs/cgroup/memory``, ``/sys/fs/cgroup/pids``, ``/sys/fs/cgroup/cpu`` or
``cpu,cpuacct``: root, or a delegated subtree).
:func:`check` says which piece is missing and how to get it; grading refuses to start
without them, unless an instructor asks for ``--no-sandbox`` (trusted notebooks only,
such as the reference solutions).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from jupyter_client import KernelManager

GiB = 1024**3
MiB = 1024**2
CHANNEL_MESSAGE = 16 * MiB
"""The largest message the grader takes from a kernel on any channel (a larger one
disconnects it); IOPub is read as it arrives, see grader/execute.py."""
CHANNEL_QUEUE = 8
"""Messages a kernel's channel socket holds before the grader reads them."""
HOME = "/home/student"
"""The kernel's working folder and HOME, inside the sandbox."""

SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
"""Host folders bound read-only (those that exist; symlinks are recreated as such)."""

_ETC_HIDDEN = ("/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/sudoers")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message names what is missing and the fix."""


@dataclass(frozen=True)
class Limits:
    """What one grading kernel may use.

    ``memory`` counts RAM and swap of every process of the kernel (shared mappings and
    tmpfs files included); ``pids`` counts processes and threads; ``file_size`` caps one
    file; ``disk`` and ``files`` cap the bytes and files all kernels of one submission
    keep in their homes, connection and exchange folders (grading as root; and the
    bytes of each kernel's ``/tmp``); ``threads`` sets the math libraries' thread pools
    (one kernel per core when grading in parallel); ``cpus`` caps the cores all the
    kernel's processes together may keep busy (cgroup v1 ``cpu`` quota; never less
    than one core).
    """

    memory: int = 3 * GiB
    pids: int = 512
    file_size: int = 64 * MiB
    disk: int = 256 * MiB
    files: int = 10_000
    threads: int = 1
    cpus: float = 1.0


def _cgroup_v1_dirs(controller: str) -> tuple[Path, Path] | None:
    """(mount point, this process's cgroup folder) of a cgroup v1 controller."""
    mount = None
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            sep = fields.index("-")
            fstype, options = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup" and controller in options:
                mount = Path(fields[4])
                break
    if mount is None:
        return None
    own = "/"
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as groups:
        for line in groups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                own = path
    return mount, mount / own.lstrip("/")


def _cgroup_problem(controller: str, limit_file: str, value: str) -> str | None:
    dirs = _cgroup_v1_dirs(controller)
    if dirs is None:
        unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        how = (
            "this machine has only cgroup v2; boot it with "
            "systemd.unified_cgroup_hierarchy=0 (kernel command line) to get the v1 "
            "controllers, or grade on a machine that has them"
            if unified
            else f"mount it: mount -t cgroup -o {controller} cgroup "
            f"/sys/fs/cgroup/{controller}"
        )
        return f"no cgroup v1 '{controller}' controller is mounted: {how}"
    probe = dirs[1] / f"grader-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
        try:
            (probe / limit_file).write_text(value)
        finally:
            probe.rmdir()
    except OSError as error:
        return (
            f"cannot create a cgroup under {dirs[1]} ({error.strerror}): grade as "
            f"root, or delegate that cgroup folder to the grading user "
            f"(chown -R user {dirs[1]})"
        )
    return None


def check(bwrap: str | None = None) -> list[str]:
    """What keeps the sandbox from starting here, one message per missing piece.

    An empty list means grading kernels can be sandboxed.
    """
    if platform.system() != "Linux":
        return [
            f"the sandbox needs Linux (namespaces, cgroups), this is "
            f"{platform.system()}: grade on a Linux machine or in a Linux VM"
        ]
    problems = []
    bwrap = shutil.which(bwrap or "bwrap")
    if bwrap is None:
        problems.append(
            "bubblewrap (bwrap) is not installed: apt-get install bubblewrap "
            "(Debian/Ubuntu), dnf install bubblewrap (Fedora)"
        )
    else:
        try:
            trial = subprocess.run(
                [bwrap, *_namespace_args(), "--ro-bind", "/", "/", "true"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            failed = trial.returncode != 0
            reason = trial.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as error:
            failed, reason = True, str(error)
        if failed:
            problems.append(
                f"bwrap cannot create namespaces ({reason}): allow user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1 and "
                "user.max_user_namespaces=10000; on Ubuntu 24.04 also "
                "kernel.apparmor_restrict_unprivileged_userns=0), or grade as root"
            )
    for controller, limit_file, value in (
        ("memory", "memory.limit_in_bytes", str(GiB)),
        ("pids", "pids.max", "100"),
        ("cpu", "cpu.cfs_quota_us", "100000"),
    ):
        problem = _cgroup_problem(controller, limit_file, value)
        if problem:
            problems.append(problem)
    return problems


def require() -> None:
    """Raise :class:`SandboxUnavailable` naming every missing piece, if any."""
    problems = check()
    if problems:
        raise SandboxUnavailable(
            "grading stopped: the sandbox for student code cannot start on this "
            "machine:\n- "
            + "\n- ".join(problems)
            + "\nFix the above, or grade trusted notebooks only (such as the reference "
            "solutions) with --no-sandbox."
        )


def _namespace_args() -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if os.geteuid() == 0:
        # grading as root: the kernel still runs as nobody, in a user namespace
        args += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    return args


class Cgroup:
    """A cgroup v1 folder in the memory, pids and cpu hierarchies, for one kernel."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.dirs: dict[str, Path] = {}
        try:
            self._create(name, limits)
        except BaseException:  # no half-made cgroup is left behind
            self.remove()
            raise

    def _create(self, name: str, limits: Limits) -> None:
        for controller in ("memory", "pids", "cpu"):
            found = _cgroup_v1_dirs(controller)
            if found is None:
                raise SandboxUnavailable(f"no cgroup v1 '{controller}' controller")
            folder = found[1] / name
            if folder not in self.dirs.values():  # controllers mounted together
                folder.mkdir()
            self.dirs[controller] = folder
        memory = self.dirs["memory"]
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(limits.memory))
        with contextlib.suppress(OSError):
            (memory / "memory.swappiness").write_text("0")
        (self.dirs["pids"] / "pids.max").write_text(str(limits.pids))
        # however many processes it forks, the kernel gets ``cpus`` cores in all
        cpu = self.dirs["cpu"]
        period = int((cpu / "cpu.cfs_period_us").read_text())
        quota = int(period * max(1.0, limits.cpus))
        (cpu / "cpu.cfs_quota_us").write_text(str(quota))

    @property
    def procs_files(self) -> list[str]:
        return [str(folder / "cgroup.procs") for folder in self.dirs.values()]

    def pids(self) -> set[int]:
        found = set()
        for folder in self.dirs.values():
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return found

    def oom_killed(self) -> bool:
        """Whether the memory cap killed a process of this cgroup."""
        memory = self.dirs["memory"]
        with contextlib.suppress(OSError):
            for line in (memory / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1]) > 0
        with contextlib.suppress(OSError, ValueError):
            return int((memory / "memory.failcnt").read_text()) > 0
        return False

    def peak_memory(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            path = self.dirs["memory"] / "memory.max_usage_in_bytes"
            return int(path.read_text())
        return 0

    def kill(self) -> None:
        """Kill every process in the cgroup (a few rounds: a fork may race a kill)."""
        for _ in range(20):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def remove(self, patience: float = 10) -> None:
        """Kill every process of the cgroup, then delete its folders.

        A folder can only go once no process is left in it, so a process that
        survived a round of kills is killed again until then.
        """
        left = list(dict.fromkeys(self.dirs.values()))
        deadline = time.monotonic() + patience
        while left:
            self.kill()
            for folder in list(left):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
                left.remove(folder)
            if left and time.monotonic() > deadline:
                print(
                    f"grader: could not empty the cgroups {', '.join(map(str, left))}",
                    file=sys.stderr,
                )
                return
            if left:
                time.sleep(0.1)


# Run by the kernel's launcher before bwrap: join the cgroups, cap file sizes and core
# dumps, then become bwrap (so bwrap's parent is the grader: --die-with-parent holds).
_JOIN_THEN_EXEC = """
import os, resource, sys
n = int(sys.argv[1])
for procs in sys.argv[2:2 + n]:
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
size, data = int(sys.argv[2 + n]), int(sys.argv[3 + n])
resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
# a private allocation beyond the cap raises MemoryError (the cgroup would kill)
resource.setrlimit(resource.RLIMIT_DATA, (data, data))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.execvp(sys.argv[4 + n], sys.argv[4 + n:])
"""


def _readonly_dirs(extra: Iterable[str | Path]) -> list[str]:
    """The host folders a kernel reads: Python, its environment, importable packages."""
    dirs = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent}
    dirs |= {Path(p) for p in extra}
    resolved = set()
    for path in dirs:
        resolved.add(str(path))
        resolved.add(str(path.resolve()))
    # drop folders inside another one of the list
    ordered = sorted(resolved)
    kept: list[str] = []
    for path in ordered:
        if not any(path.startswith(parent.rstrip("/") + "/") for parent in kept):
            kept.append(path)
    return [p for p in kept if Path(p).exists()]


_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(path: Path, size: int, files: int) -> None:
    """Mount a tmpfs of ``size`` bytes and ``files`` inodes on ``path`` (as root)."""
    options = f"size={size},nr_inodes={files},mode=0700".encode()
    if _libc().mount(
        b"grade", str(path).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options
    ):
        error = ctypes.get_errno()
        raise SandboxUnavailable(
            f"cannot mount the submission's disk-capped tmpfs on {path}: "
            f"{os.strerror(error)}"
        )


def _unmount(path: Path) -> None:
    _libc().umount2(str(path).encode(), _MNT_DETACH)


def _new_root() -> Path:
    """The folder of one submission's kernels: under /dev/shm (a tmpfs, whose pages
    count against the writing kernel's memory cap) when not grading as root; as root a
    disk-capped tmpfs is mounted on it (:class:`Sandbox`)."""
    shm = Path("/dev/shm")
    where = None
    if os.geteuid() != 0 and shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        where = str(shm)
    return Path(tempfile.mkdtemp(prefix="grade-", dir=where))


def _package_locations(names: Iterable[str]) -> list[tuple[Path, Path]]:
    """(folder to bind, its ``sys.path`` entry) of each package the grader finds."""
    import importlib.util

    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            places = spec.submodule_search_locations
            found += [(Path(p), Path(p).parent) for p in places]
        elif spec and spec.origin:
            folder = Path(spec.origin).parent
            found.append((folder, folder))
    return found


def bwrap_command(
    *,
    home: Path,
    writable: Iterable[Path],
    readonly: Iterable[str],
    limits: Limits,
    pythonpath: Iterable[str | Path] = (),
) -> list[str]:
    """The bwrap arguments that start a program in a fresh sandbox."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    args = [bwrap, *_namespace_args(), "--clearenv"]
    for folder in SYSTEM_DIRS:
        path = Path(folder)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    for hidden in _ETC_HIDDEN:
        if Path(hidden).is_dir():
            args += ["--tmpfs", hidden]
        elif Path(hidden).exists():
            args += ["--ro-bind", "/dev/null", hidden]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for private in ("/tmp", "/run"):
        args += ["--size", str(limits.disk), "--tmpfs", private]
    for folder in readonly:
        args += ["--ro-bind", folder, folder]
    args += ["--bind", str(home), HOME]
    for folder in writable:
        args += ["--bind", str(folder), str(folder)]
    threads = str(limits.threads)
    env = {
        "HOME": HOME,
        "IPYTHONDIR": f"{HOME}/.ipython",
        "JUPYTER_CONFIG_DIR": f"{HOME}/.jupyter",
        "JUPYTER_DATA_DIR": f"{HOME}/.local/share/jupyter",
        "MPLCONFIGDIR": f"{HOME}/.matplotlib",
        "MPLBACKEND": "Agg",
        "KERAS_HOME": f"{HOME}/.keras",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONNOUSERSITE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "LANG": "C.UTF-8",
    }
    # the bound copies of the course's packages come first on sys.path
    path = list(dict.fromkeys(str(folder) for folder in pythonpath))
    if path:
        env["PYTHONPATH"] = ":".join(path)
    for name, value in env.items():
        args += ["--setenv", name, value]
    return [*args, "--chdir", HOME]


_LAUNCHER: ThreadPoolExecutor | None = None
_LAUNCHER_LOCK = threading.Lock()


def _launcher() -> ThreadPoolExecutor:
    global _LAUNCHER
    with _LAUNCHER_LOCK:
        if _LAUNCHER is None:
            _LAUNCHER = ThreadPoolExecutor(1, thread_name_prefix="kernel-launcher")
        return _LAUNCHER


class SandboxedKernelManager(KernelManager):
    """A jupyter KernelManager whose kernel runs in a bwrap sandbox and a cgroup.

    The ZeroMQ transport is ``ipc``: unix socket files in the kernel's connection
    folder, which is bound into the sandbox at the same path. Interrupts are control
    messages (``interrupt_request``), since a signal would reach bwrap.
    """

    def __init__(self, *, sandbox_prefix: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self._sandbox_prefix = sandbox_prefix
        # a signal would reach bwrap, not the kernel: interrupt by a control message
        self.kernel_spec.interrupt_mode = "message"

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*self._sandbox_prefix, *super().format_kernel_cmd(extra_arguments)]


@dataclass
class Sandbox:
    """The sandboxes of one submission's kernels, and the host folders behind them.

    ``start_kernel(role)`` is what :func:`grader.execute.run_notebook` calls: each role
    gets its own sandbox, cgroup and home; :attr:`exchange_dir` is bound into all of
    them. Grading as root, a tmpfs of ``limits.disk`` bytes is mounted on :attr:`root`
    (see the module's docstring). ``enabled=False`` runs plain local kernels
    (``--no-sandbox``: trusted notebooks only), still with their own folders and an
    empty IPython profile.
    """

    limits: Limits = field(default_factory=Limits)
    enabled: bool = True
    packages: tuple[str, ...] = ("course_utils", "grader")
    root: Path = field(default_factory=_new_root)
    kernels: dict[str, tuple[KernelManager, object]] = field(default_factory=dict)
    cgroups: dict[str, Cgroup] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # others may not enter: the folder names are not secrets, the contents are
        self.root.chmod(0o700)
        self.mounted = False
        if self.enabled and os.geteuid() == 0:
            _mount_tmpfs(self.root, self.limits.disk, self.limits.files)
            self.mounted = True
        self.exchange_dir = self.root / "exchange"
        self.exchange_dir.mkdir()

    def start_kernel(self, role: str):
        """Start a kernel for ``role`` and return its (manager, ready client)."""
        home = self.root / role / "home"
        runtime = self.root / role / "runtime"
        for folder in (home / ".ipython", runtime):
            folder.mkdir(parents=True)
        connection = runtime / "kernel.json"
        if self.enabled:
            cgroup = Cgroup(f"grade-{uuid.uuid4().hex[:12]}-{role}", self.limits)
            self.cgroups[role] = cgroup
            packages = _package_locations(self.packages)
            command = bwrap_command(
                home=home,
                writable=[runtime, self.exchange_dir],
                readonly=_readonly_dirs(folder for folder, _ in packages),
                limits=self.limits,
                pythonpath=[entry for _, entry in packages],
            )
            procs = cgroup.procs_files
            prefix = [
                sys.executable,
                "-I",
                "-c",
                _JOIN_THEN_EXEC,
                str(len(procs)),
                *procs,
                str(self.limits.file_size),
                str(self.limits.memory),
                *command,
            ]
            manager = SandboxedKernelManager(
                sandbox_prefix=prefix,
                kernel_name="python3",
                transport="ipc",
                ip=str(runtime / "zmq"),
                connection_file=str(connection),
            )
            # --die-with-parent follows the *thread* that starts bwrap (Linux's
            # parent-death signal): start it from a thread that lives as long as
            # the grader, not from a caller's short-lived worker thread
            _launcher().submit(
                manager.start_kernel,
                cwd=str(home),
                env={},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).result()
        else:
            manager = KernelManager(
                kernel_name="python3",
                transport="ipc",
                ip=str(runtime / "zmq"),
                connection_file=str(connection),
            )
            env = {
                **os.environ,
                "HOME": str(home),
                "IPYTHONDIR": str(home / ".ipython"),
                "MPLBACKEND": "Agg",
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "OMP_NUM_THREADS": str(self.limits.threads),
                "TF_NUM_INTRAOP_THREADS": str(self.limits.threads),
                "TF_NUM_INTEROP_THREADS": str(self.limits.threads),
            }
            manager.start_kernel(
                cwd=str(home),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        client = manager.client()
        # A kernel can send on every channel at any time, messages validly signed with
        # its own key: the grader's sockets take at most CHANNEL_QUEUE messages of at
        # most CHANNEL_MESSAGE bytes each before the kernel has to wait (its own
        # context, so these are the defaults of exactly this client's sockets).
        client.context.setsockopt(zmq.MAXMSGSIZE, CHANNEL_MESSAGE)
        client.context.setsockopt(zmq.RCVHWM, CHANNEL_QUEUE)
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
        except RuntimeError:
            client.stop_channels()
            self._stop(manager)
            raise
        self.kernels[role] = (manager, client)
        return manager, client

    def oom_killed(self) -> bool:
        return any(cgroup.oom_killed() for cgroup in self.cgroups.values())

    def peak_memory(self) -> dict[str, int]:
        return {role: cg.peak_memory() for role, cg in self.cgroups.items()}

    def kill(self) -> None:
        """Kill every kernel now (the whole-notebook wall clock ran out)."""
        for cgroup in self.cgroups.values():
            cgroup.kill()
        for manager, _ in self.kernels.values():
            with contextlib.suppress(Exception):
                manager.kill_kernel()

    def _stop(self, manager: KernelManager) -> None:
        with contextlib.suppress(Exception):
            manager.shutdown_kernel(now=True)

    def close(self) -> None:
        for manager, client in self.kernels.values():
            with contextlib.suppress(Exception):
                client.stop_channels()
            self._stop(manager)
        for cgroup in self.cgroups.values():
            cgroup.kill()
        if self.mounted:
            _unmount(self.root)
            self.mounted = False
        shutil.rmtree(self.root, ignore_errors=True)
        for cgroup in self.cgroups.values():
            cgroup.remove()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
