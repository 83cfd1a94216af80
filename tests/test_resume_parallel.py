"""Grading is resumable and parallel-safe.

- A run killed with SIGKILL (the grader and its whole process group) at a seeded random point,
  then rerun, gives the same grades.csv / exercises.csv as an uninterrupted run, redoes only the
  submissions that had not finished, and leaves one gradebook submission per student (no
  duplicated rows), each with one grade per test cell.
- `--jobs 2` writes the same files as `--jobs 1`.
- SUBMISSIONS is byte-for-byte unchanged by all of it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from adversarial import corpus, fixture
from adversarial.harness import REPO, grader_cmd, grader_env, release, run_grader, tree_digest

pytestmark = pytest.mark.skipif(
    not (REPO / "autograder" / "__main__.py").exists(),
    reason="autograder CLI (autograder/__main__.py) not written yet",
)

SEED = int(os.environ.get("BPKIT_RESUME_SEED", "20261123"))
N_STUDENTS = 8
LIMITS = ["--cell-timeout", "20", "--timeout", "60"]
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]\s+(\S+)/(\S+)\s+(\S+)")


def _submissions(root: Path, ctx: corpus.Ctx) -> list[str]:
    """N_STUDENTS students cycling through solved / stub / wrong / partly right notebooks."""
    students = []
    for i in range(N_STUDENTS):
        student = f"s{i:02d}"
        kind = i % 4
        if kind == 0:
            nb = ctx.solved()
        elif kind == 1:
            nb = ctx.release()
        elif kind == 2:
            nb = ctx.release()
            for gid, src in fixture.WRONG.items():
                corpus.set_answer(nb, gid, src)
        else:
            nb = ctx.solved()
            corpus.set_answer(nb, "dP_dw1", fixture.WRONG["dP_dw1"])
        corpus.write_nb(nb, root, student)
        students.append(student)
    return students


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    source = root / "source"
    source_nb = fixture.write_source(source)
    course0 = root / "course0"
    release_nb = release(course0, source, fixture.ASSIGNMENT)
    ctx = corpus.Ctx(
        source_nb=source_nb,
        release_nb=release_nb,
        course=course0,
        submissions=root / "submissions",
        out=root / "unused",
        port=0,
        host_ip=None,
        token="resume",
    )
    students = _submissions(ctx.submissions, ctx)
    courses = {}
    for name in ("jobs1", "jobs2", "killed"):  # identical courses: copies of one fresh release
        courses[name] = root / f"course_{name}"
        shutil.copytree(course0, courses[name], symlinks=True)
    return dict(
        root=root,
        source=source,
        courses=courses,
        sub=ctx.submissions,
        students=students,
        digest=tree_digest(ctx.submissions),
    )


def _grade(setup, name, *extra, timeout=180):
    out = setup["root"] / f"out_{name}"
    proc = run_grader(
        setup["courses"][name],
        setup["source"],
        "grade",
        setup["sub"],
        "--out",
        out,
        *LIMITS,
        *extra,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"grade ({name}) exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return out, proc


def _progress(text: str) -> list[str]:
    return [m.group(3) for m in map(PROGRESS.match, text.splitlines()) if m]


def _state_students(out: Path) -> set[str]:
    """Students with a finished-submission state file (JSON naming the student)."""
    found = set()
    state = out / ".state"
    for path in state.glob("**/*.json") if state.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a half-written file does not count as finished
        student = data.get("student") if isinstance(data, dict) else None
        found.add(student or path.stem)
    return found


@pytest.fixture(scope="module")
def uninterrupted(setup):
    out, proc = _grade(setup, "jobs1", "--jobs", "1")
    assert sorted(_progress(proc.stderr)) == sorted(setup["students"]), proc.stderr[-2000:]
    return out


def _files_equal(a: Path, b: Path, name: str):
    left, right = (a / name).read_bytes(), (b / name).read_bytes()
    assert left == right, (
        f"{name} differs between {a.name} and {b.name}:\n{left.decode()}\n---\n{right.decode()}"
    )


def test_jobs2_equals_jobs1(setup, uninterrupted):
    out2, proc = _grade(setup, "jobs2", "--jobs", "2")
    _files_equal(uninterrupted, out2, "grades.csv")
    _files_equal(uninterrupted, out2, "exercises.csv")


def test_kill9_then_resume(setup, uninterrupted):
    name = "killed"
    out = setup["root"] / f"out_{name}"
    kill_after = random.Random(SEED).randint(
        2, N_STUDENTS - 3
    )  # finished submissions before the kill
    proc = subprocess.Popen(
        grader_cmd(
            setup["courses"][name],
            setup["source"],
            "grade",
            setup["sub"],
            "--out",
            out,
            "--jobs",
            "2",
            *LIMITS,
        ),
        cwd=REPO,
        env=grader_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen, lines = [], []
    kill = lambda: os.killpg(proc.pid, signal.SIGKILL)  # the grader and its whole process group
    watchdog = threading.Timer(150, kill)  # bound the wait even if the grader falls silent
    watchdog.start()
    try:
        for line in proc.stderr:
            lines.append(line)
            if PROGRESS.match(line):
                seen.append(line)
            if len(seen) >= kill_after:
                break
    finally:
        watchdog.cancel()
        try:
            kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    assert len(seen) == kill_after, (
        f"saw {len(seen)} progress lines before the kill:\n{''.join(lines)}"
    )
    time.sleep(1)  # let --die-with-parent sandboxes go
    finished = _state_students(out)
    assert kill_after <= len(finished) < N_STUDENTS, (
        f"after the kill at {kill_after} finished, state files name {sorted(finished)}"
    )

    rerun = run_grader(
        setup["courses"][name],
        setup["source"],
        "grade",
        setup["sub"],
        "--out",
        out,
        "--jobs",
        "2",
        *LIMITS,
        timeout=180,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    redone = _progress(rerun.stderr)
    print(
        f"killed after {kill_after} progress lines; finished {sorted(finished)}; redone {sorted(redone)}"
    )
    assert sorted(redone) == sorted(set(setup["students"]) - finished), (
        f"resume redid {sorted(redone)}; finished before the kill: {sorted(finished)}"
    )

    _files_equal(uninterrupted, out, "grades.csv")
    _files_equal(uninterrupted, out, "exercises.csv")
    _check_gradebook(setup["courses"][name], setup["students"], out)


def _check_gradebook(course: Path, students: list[str], out: Path):
    from adversarial.harness import grades_by_key
    from nbgrader.api import Grade, Gradebook, SubmittedAssignment

    grades = grades_by_key(out)
    n_grade_cells = len(fixture.POINTS)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        rows = gb.db.query(SubmittedAssignment).all()
        pairs = [(r.student.id, r.assignment.name) for r in rows]
        assert sorted(pairs) == sorted((s, fixture.ASSIGNMENT) for s in students), (
            f"gradebook submissions: {sorted(pairs)}"
        )
        assert gb.db.query(Grade).count() == len(students) * n_grade_cells, "duplicated grade rows"
        for student in students:
            sub = gb.find_submission(fixture.ASSIGNMENT, student)
            assert abs(sub.score - float(grades[(student, fixture.ASSIGNMENT)]["score"])) < 1e-9, (
                f"{student}: gradebook score {sub.score} vs grades.csv"
            )


def test_gradebook_of_uninterrupted_run(setup, uninterrupted):
    _check_gradebook(setup["courses"]["jobs1"], setup["students"], uninterrupted)


def test_expected_scores(setup, uninterrupted):
    """Independent of the other runs: solved 4, stub 0, wrong 0, solved-but-dP-wrong 3."""
    from adversarial.harness import grades_by_key

    grades = grades_by_key(uninterrupted)
    want = {0: 4.0, 1: 0.0, 2: 0.0, 3: 3.0}
    for i, student in enumerate(setup["students"]):
        row = grades[(student, fixture.ASSIGNMENT)]
        assert (row["status"], float(row["score"])) == ("ok", want[i % 4]), (student, row)


def test_submissions_unchanged(setup, uninterrupted):
    # runs after the others in file order; the module fixture shares one SUBMISSIONS tree
    assert tree_digest(setup["sub"]) == setup["digest"], "SUBMISSIONS was modified by grading"
