"""One submission never stops or stalls a class's grading run (grader/pool.py,
pipeline.record, report.py).

The kernels are replaced by a fake ``pipeline.grade`` that returns chosen outcomes:
one with a lone surrogate in its outputs and reason (what a student's kernel can send
by patching its own message packer), one whose recording raises, among good ones.
Everything else (preparing, recording, the gradebook, the report, grades.csv and the
exit code) is the real grader's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import cli, pipeline, report
from grader.submission import find_submissions

ASSIGNMENT = NOTEBOOK = "ex1"
STUDENTS = ("aa_crash", "ada", "bob", "cy")
SURROGATE = "pwned \udcff"
REAL_GRADE = pipeline.grade


def make_course(root: Path) -> Path:
    """A course with one assignment (one answer cell, one 10-point test cell), its
    release, and a submission per student."""
    answer = nbformat.v4.new_code_cell("answer = None")
    answer.metadata.nbgrader = {
        "grade": False,
        "grade_id": "answer",
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    test = nbformat.v4.new_code_cell("assert answer == 42")
    test.metadata.nbgrader = {
        "grade": True,
        "grade_id": "answer_test",
        "locked": True,
        "points": 10,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    nb = nbformat.v4.new_notebook(cells=[answer, test])
    release = root / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    release.parent.mkdir(parents=True)
    nbformat.write(nb, release)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        gradebook.add_assignment(ASSIGNMENT)
        gradebook.add_notebook(NOTEBOOK, ASSIGNMENT)
        gradebook.add_grade_cell(
            "answer_test", NOTEBOOK, ASSIGNMENT, max_score=10, cell_type="code"
        )
        gradebook.add_solution_cell("answer", NOTEBOOK, ASSIGNMENT)
        for cell, locked in ((answer, False), (test, True)):
            gradebook.add_source_cell(
                cell.metadata.nbgrader["grade_id"],
                NOTEBOOK,
                ASSIGNMENT,
                cell_type="code",
                locked=locked,
                source=cell.source,
                checksum="x",
            )
    for student in STUDENTS:
        path = root / "submitted" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    return root


def fake_grade(job: pipeline.Job, settings: pipeline.Settings) -> pipeline.Outcome:
    """Full marks, the student's id printed in the answer cell; ``aa_crash``'s output
    and reason hold a lone surrogate that no later step of the real grade() removed.
    A job that already failed (``job.error``) goes to the real grade(): it runs
    nothing."""
    if job.error:
        return REAL_GRADE(job, settings)
    nb = nbformat.from_dict(job.release)
    text = SURROGATE if job.student == "aa_crash" else job.student
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=text + "\n")
    ]
    reason = f"timeout in cell 0: {SURROGATE}" if job.student == "aa_crash" else None
    nb.metadata["grader"] = {"sha256": job.sha256, "status": "graded", "reason": reason}
    return pipeline.Outcome(
        job.student,
        job.assignment,
        job.notebook,
        "graded",
        reason,
        {"answer_test": 10.0},
        {"answer_test": 10.0},
        {},
        [],
        job.sha256,
        0.1,
        {},
        nbformat.writes(nb),
    )


def grades(course: Path) -> dict[str, dict]:
    with (course / "grades.csv").open(encoding="utf-8") as file:
        return {row["student_id"]: row for row in csv.DictReader(file)}


def grade(course: Path, *extra: str) -> int:
    args = ["grade", "--course", str(course), "--no-sandbox", "--workers", "1"]
    return cli.main([*args, *extra])


@pytest.fixture
def course(tmp_path: Path, monkeypatch) -> Path:
    from grader import pool

    monkeypatch.setattr(pipeline, "grade", fake_grade)
    monkeypatch.setattr(pool, "preflight", lambda settings: None)  # tested below
    return make_course(tmp_path)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_grading_stops_before_anyone_when_a_kernel_cannot_import_the_course(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, workers: str
) -> None:
    """A grading kernel that cannot import the course's packages would give every
    student 0 for the grader's fault: the run stops first, saying what failed."""
    from grader import pool

    monkeypatch.setattr(pipeline, "grade", fake_grade)
    course = make_course(tmp_path)
    assert pool.preflight(pipeline.Settings()) is None  # the real sandbox imports all
    monkeypatch.setattr(pool, "PREFLIGHT", "import course_utils.not_a_module")
    args = ["grade", "--course", str(course), "--workers", workers]
    assert cli.main(args) != 0
    said = capsys.readouterr()
    assert "grading kernel cannot run `import course_utils.not_a_module`" in (
        said.out + said.err
    )
    assert "ModuleNotFoundError" in said.out + said.err
    assert not (course / "autograded").exists()


def test_a_lone_surrogate_in_outputs_is_recorded_as_a_question_mark(
    course: Path,
) -> None:
    assert grade(course) == 0
    path = pipeline.autograded_path(course, "aa_crash", ASSIGNMENT, NOTEBOOK)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].outputs[0].text == "pwned ?\n"
    assert nb.metadata.grader["reason"] == "timeout in cell 0: pwned ?"
    table = grades(course)
    assert {s: table[s]["score"] for s in STUDENTS} == dict.fromkeys(STUDENTS, "10")
    assert table["aa_crash"]["reason"] == "timeout in cell 0: pwned ?"


def test_a_recording_that_raises_fails_that_submission_and_the_run_goes_on(
    course: Path, monkeypatch, capsys
) -> None:
    real_record = pipeline.record

    def record(course, gradebook, outcome, timestamp=None):
        if outcome.student == "bob" and outcome.status == "graded":
            raise OSError(28, "No space left on device")
        real_record(course, gradebook, outcome, timestamp)

    monkeypatch.setattr(pipeline, "record", record)
    assert grade(course) == 1, "the exit status says a submission failed"
    table = grades(course)
    for student in ("aa_crash", "ada", "cy"):
        assert (table[student]["score"], table[student]["status"]) == ("10", "graded")
    bob = table["bob"]
    assert (bob["score"], bob["status"]) == ("0", "failed")
    assert bob["reason"] == (
        "grading error: could not record it: "
        "OSError: [Errno 28] No space left on device"
    )
    out, err = capsys.readouterr()
    assert "FAILED bob/ex1: grading error: could not record it" in err
    assert "bob/ex1: error: grading error: could not record it" in out
    report_file = sorted((course / "reports").glob("grading-*.md"))[-1]
    assert "could not record it" in report_file.read_text(encoding="utf-8")

    monkeypatch.setattr(pipeline, "record", real_record)
    assert grade(course) == 0, "a failure is graded again on the next run"
    assert grades(course)["bob"]["score"] == "10"


def test_grading_that_raises_fails_that_submission_and_the_run_goes_on(
    course: Path, monkeypatch
) -> None:
    def grade_or_raise(job, settings):
        if job.student == "ada" and not job.error:
            raise RuntimeError("a bug in the grader")
        return fake_grade(job, settings)

    monkeypatch.setattr(pipeline, "grade", grade_or_raise)
    assert grade(course) == 1
    table = grades(course)
    assert (table["ada"]["score"], table["ada"]["status"]) == ("0", "failed")
    assert table["ada"]["reason"] == "grading error: RuntimeError: a bug in the grader"
    assert [table[s]["score"] for s in ("aa_crash", "bob", "cy")] == ["10"] * 3


def test_a_half_written_autograded_file_is_graded_again_not_skipped(
    course: Path, capsys
) -> None:
    assert grade(course) == 0
    path = pipeline.autograded_path(course, "cy", ASSIGNMENT, NOTEBOOK)
    path.write_bytes(b"")  # what a crash in the middle of a plain write leaves
    rows = {row.student: row for row in report.collect(course)}
    assert rows["cy"].status == "failed"
    assert "no grading record" in rows["cy"].reason
    capsys.readouterr()
    assert grade(course) == 0
    assert "grading 4 submission(s)" in capsys.readouterr().out
    assert nbformat.read(path, as_version=4).metadata.grader["status"] == "graded"
    assert grades(course)["cy"]["score"] == "10"


def test_a_write_that_fails_keeps_the_previous_record_whole(
    course: Path, monkeypatch
) -> None:
    assert grade(course) == 0
    path = pipeline.autograded_path(course, "ada", ASSIGNMENT, NOTEBOOK)
    before = path.read_bytes()

    def replace_fails(source, target):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pipeline.os, "replace", replace_fails)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        (submission,) = [
            s for s in find_submissions(course, gradebook) if s.student == "ada"
        ]
        job = pipeline.prepare(course, submission, gradebook)
        with pytest.raises(OSError, match="Input/output error"):
            pipeline.record(course, gradebook, fake_grade(job, None))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary"


def test_the_reasons_file_holds_no_lone_surrogate(course: Path) -> None:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        (submission, *_) = find_submissions(course, gradebook)
        job = pipeline.prepare(course, submission, gradebook)
        outcome = fake_grade(job, None)
        outcome.failed_tests = {"answer_test": f"AssertionError: {SURROGATE}"}
        pipeline.record(course, gradebook, outcome)
    path = pipeline.reasons_path(course, job.student, ASSIGNMENT, NOTEBOOK)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["failed_tests"] == {"answer_test": "AssertionError: pwned ?"}


# A kernel that leaves processes behind: detached (new session, double fork), deaf
# to SIGTERM/SIGINT/SIGHUP, busy or asleep.
SCATTER = """
import os, signal, time
for busy in (True, False, False):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            while True:
                if not busy:
                    time.sleep(1)
        os._exit(0)
time.sleep(1)
print('scattered')
"""


def running(pids: set[int], cgroup_name: str) -> dict[int, str]:
    """Those of ``pids`` that still run in the cgroup ``cgroup_name``, with their
    state (a zombie waiting to be reaped runs nothing; a reused pid is another's)."""
    alive = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            groups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        if state != "Z" and cgroup_name in groups:
            alive[pid] = f"{state}: {stat[:60]}"
    return alive


def scattered_kernel(box) -> tuple[object, set[int]]:
    manager, client = box.start_kernel("student")
    out = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = client.execute_interactive(SCATTER, timeout=60, output_hook=hook)
    assert (reply["content"]["status"], "".join(out)) == ("ok", "scattered\n")
    pids = box.cgroups["student"].pids()
    assert len(pids) >= 6, "bwrap, its init, the kernel and 3 detached processes"
    assert len(running(pids, box.cgroups["student"].dirs["pids"].name)) == len(pids)
    return manager, pids


@pytest.mark.slow
def test_the_wall_clock_kill_leaves_no_process_of_the_kernel_behind() -> None:
    from grader import sandbox

    with sandbox.Sandbox(limits=sandbox.Limits(memory=256 * 1024**2)) as box:
        _, pids = scattered_kernel(box)
        folders = list(box.cgroups["student"].dirs.values())
        box.kill()  # what the whole-notebook wall clock calls
        assert box.cgroups["student"].pids() == set()
        assert running(pids, folders[0].name) == {}
    assert not any(folder.exists() for folder in folders), "cgroups removed"


@pytest.mark.slow
def test_a_memory_kill_takes_the_kernels_other_processes_with_it() -> None:
    import time

    from grader import sandbox

    with sandbox.Sandbox(limits=sandbox.Limits(memory=256 * 1024**2)) as box:
        manager, pids = scattered_kernel(box)
        client = box.kernels["student"][1]
        client.execute(
            "import mmap\n"
            "m = mmap.mmap(-1, 1024**3, flags=mmap.MAP_SHARED)\n"
            "for i in range(0, 1024**3, 4096):\n"
            "    m[i] = 1\n"
        )
        cgroup = box.cgroups["student"]
        deadline = time.monotonic() + 120
        while (manager.is_alive() or cgroup.pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cgroup.oom_killed()
        # nothing killed the detached processes but the end of the kernel's sandbox
        left = running(pids, cgroup.dirs["pids"].name)
        assert (cgroup.pids(), left) == (set(), {}), manager.is_alive()


def test_a_lost_dask_worker_s_submission_fails_itself_and_is_not_run_here(
    course: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever killed a worker must not reach the grader's own process: the
    submission fails with the reason, and the next run retries it."""
    from grader import pool

    class LostFuture:
        def result(self):
            raise OSError("worker tcp://10.0.0.7:4242 lost")

    def run_here(*args, **kwargs):
        raise AssertionError("the lost submission's notebook ran in the grader")

    from grader import execute

    monkeypatch.setattr(execute, "run_notebook", run_here)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        (submission, *_) = find_submissions(course, gradebook)
        job = pipeline.prepare(course, submission, gradebook)
    outcome = pool._result(LostFuture(), job, pipeline.Settings(sandboxed=False))
    assert (outcome.student, outcome.status, outcome.score) == (
        job.student,
        "failed",
        0,
    )
    assert outcome.reason == (
        "grading error: the worker grading it was lost (OSError: worker "
        "tcp://10.0.0.7:4242 lost); grade again to retry"
    )
