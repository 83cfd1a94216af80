"""Grading on a Dask cluster: a scheduler and two workers started here on 127.0.0.1.

- `grade --scheduler` writes the same grades.csv / exercises.csv as `grade --jobs 1` on this
  machine, and the scores expected from the fixture's answers.
- A worker killed (SIGKILL, its whole process group) while it grades: its task is run again on
  the other worker; nothing is lost or duplicated (one progress line, one CSV row, one gradebook
  submission per student), and nothing of the killed worker (its fork server, a sandbox) stays.
- The grading client killed with SIGKILL mid-run, then rerun: the rerun grades only what had not
  finished, and the files equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from conftest import FIXTURE_WRONG, REPO, VENV_BIN, run_cli

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap (bwrap) needed")

LIMITS = ["--cell-timeout", "20", "--timeout", "60"]
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (\S+)/(\S+) (\S+) ")
ASSIGNMENT = "01_fix"
# (student kind, expected score out of 6: ex_x 2 + ex_f 1 + hidden ex_f 2; "why" is written, 1)
KINDS = [("solved", 5), ("stub", 0), ("wrong", 0), ("partly", 3)]
N_STUDENTS = 6


def _env():
    env = dict(os.environ)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO)
    for name in ("BPKIT_COURSE_DIR", "BPKIT_SOURCE_DIR", "BPKIT_DB_URL"):
        env.pop(name, None)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args):
    exe = Path(VENV_BIN) / "dask"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"], list(args)


class Cluster:
    """`dask scheduler` and `dask worker` processes, each in a process group of its own."""

    def __init__(self, root: Path):
        self.root, self.procs, self.workers = root, [], {}
        self.address = "tcp://127.0.0.1:%d" % _free_port()
        self._start(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            self.address.rsplit(":", 1)[1],
            "--no-dashboard",
            "--idle-timeout",
            "900",  # a leaked scheduler goes by itself
        )
        self.client = distributed.Client(self.address, timeout=60, set_as_default=False)

    def _start(self, name, *args):
        exe, rest = _dask(*args)
        log = open(self.root / f"{name}.log", "wb")
        proc = subprocess.Popen(
            exe + rest,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(),
            cwd=self.root,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def add_worker(self, name):
        before = set(self.client.scheduler_info()["workers"])
        proc = self._start(
            name,
            "worker",
            self.address,
            "--host",
            "127.0.0.1",
            "--name",
            name,
            "--nthreads",
            "1",
            "--memory-limit",
            "0",
            "--no-dashboard",
            "--death-timeout",
            "60",  # a worker left without its scheduler goes by itself
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            workers = self.client.scheduler_info()["workers"]
            new = [a for a, w in workers.items() if a not in before and w.get("name") == name]
            if new:
                self.workers[name] = (proc, new[0])
                return new[0]
            assert proc.poll() is None, (self.root / f"{name}.log").read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError("worker %s did not register" % name)

    def kill_worker(self, name):
        """SIGKILL the worker's whole process group (its nanny and the worker process)."""
        proc, _ = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self):
        self.client.close()
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.add_worker("w1")
        c.add_worker("w2")
        yield c
    finally:
        c.close()


def _set_answer(nb, grade_id, source):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            return
    raise KeyError(grade_id)


@pytest.fixture(scope="module")
def batch(fixture_course, tmp_path_factory):
    """N_STUDENTS submissions cycling through solved / stub / wrong / partly right."""
    root = tmp_path_factory.mktemp("dask_batch")
    sub = root / "submissions"
    students, expected = [], {}
    for i in range(N_STUDENTS):
        kind, score = KINDS[i % len(KINDS)]
        nb = nbformat.from_dict(json.loads(nbformat.writes(fixture_course.release_nb)))
        if kind in ("solved", "partly"):
            _set_answer(nb, "ex_x", "x = 2")
            _set_answer(nb, "ex_f", "def f(a):\n    return 2 * a")
        if kind == "partly":
            _set_answer(nb, "ex_f", FIXTURE_WRONG["ex_f"][1]["source"])  # right on f(1) only
        if kind == "wrong":
            _set_answer(nb, "ex_x", FIXTURE_WRONG["ex_x"][0]["source"])
            _set_answer(nb, "ex_f", FIXTURE_WRONG["ex_f"][0]["source"])
        student = f"s{i:02d}"
        folder = sub / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
        students.append(student)
        expected[student] = score
    return dict(root=root, sub=sub, students=students, expected=expected, fc=fixture_course)


def _course(batch, name):
    """A fresh copy of the released course (its own gradebook) for one run."""
    dest = batch["root"] / f"course_{name}"
    if not dest.exists():  # the release only: other test files grade into the shared course
        shutil.copytree(batch["fc"].course / "release", dest / "release", symlinks=True)
    return dest


def _args(batch, name, *extra):
    return [
        "--course",
        _course(batch, name),
        "--source",
        batch["fc"].source,
        "grade",
        batch["sub"],
        "--out",
        batch["root"] / f"out_{name}",
        *LIMITS,
        *extra,
    ]


def _progress(text):
    return [m.group(3) for m in map(PROGRESS.match, text.splitlines()) if m]


def _read(out, name):
    return (out / name).read_text()


def _same_files(ref, out):
    for name in ("grades.csv", "exercises.csv"):
        assert _read(out, name) == _read(ref, name), f"{name} differs from the --jobs 1 run"


def _check_gradebook(course, students):
    from nbgrader.api import Grade, Gradebook, SubmittedAssignment

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        pairs = sorted((r.student.id, r.assignment.name) for r in gb.db.query(SubmittedAssignment))
        assert pairs == [(s, ASSIGNMENT) for s in sorted(students)], pairs
        assert gb.db.query(Grade).count() == 4 * len(students), "duplicated or missing grades"


@pytest.fixture(scope="module")
def reference(batch):
    proc = run_cli(*_args(batch, "jobs1", "--jobs", "1"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = batch["root"] / "out_jobs1"
    scores = {
        line.split(",")[0]: (line.split(",")[2], line.split(",")[5])
        for line in _read(out, "grades.csv").splitlines()[1:]
    }
    want = {s: (str(v), "ok") for s, v in batch["expected"].items()}
    assert scores == want, "the --jobs 1 run itself is off"
    return out


def test_dask_run_equals_jobs1(cluster, batch, reference):
    proc = run_cli(*_args(batch, "dask", "--scheduler", cluster.address), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(_progress(proc.stderr)) == batch["students"], proc.stderr[-3000:]
    _same_files(reference, batch["root"] / "out_dask")
    _check_gradebook(_course(batch, "dask"), batch["students"])


def _start_grade(batch, name, scheduler, **env):
    """`python -m autograder grade` of the batch on a Dask scheduler, in its own session (so the
    test can kill its whole process group); stderr is piped for the test to read."""
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", *map(str, _args(batch, name))]
        + ["--scheduler", scheduler],
        env=dict(_env(), **env),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_worker_killed_mid_run(cluster, batch, reference):
    name = "killworker"
    grade = _start_grade(batch, name, cluster.address)
    err = []
    reader = threading.Thread(target=lambda: err.extend(grade.stderr), daemon=True)
    reader.start()
    victim = None
    try:
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline and grade.poll() is None:
            for worker, keys in cluster.client.processing().items():
                grading = [k for k in keys if str(k).startswith("bpkit-grade-")]
                mine = [n for n, (_, addr) in cluster.workers.items() if addr == worker]
                if grading and mine:
                    victim = mine[0]
                    break
            else:
                time.sleep(0.05)
        assert victim, "no worker was ever seen grading:\n" + "".join(err)
        proc, address = cluster.workers[victim]
        doomed = [p.pid for p in _descendants(proc.pid)]  # nanny's worker, fork server, sandbox
        cluster.kill_worker(victim)
        grade.wait(timeout=240)
    finally:
        if grade.poll() is None:
            os.killpg(grade.pid, signal.SIGKILL)
            grade.wait()
    reader.join(timeout=10)
    text = "".join(err)
    assert grade.returncode == 0, text[-3000:]
    # the scheduler saw the worker go while it held a grading task: that task ran again
    removed = [
        msg
        for _, msg in cluster.client.get_events(address)
        if isinstance(msg, dict) and msg.get("action") == "remove-worker"
    ]
    assert removed and any(
        str(k).startswith("bpkit-grade-") for k in removed[-1]["processing-tasks"]
    )
    assert sorted(_progress(text)) == batch["students"], text[-3000:]  # once each
    _same_files(reference, batch["root"] / f"out_{name}")
    _check_gradebook(_course(batch, name), batch["students"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in doomed):
        time.sleep(0.2)
    left = [p for p in doomed if psutil.pid_exists(p)]
    assert not left, "processes of the killed worker still run: %s" % left
    cluster.add_worker("w3")  # two workers again for the next test


def _state_students(out):
    found = set()
    for path in (out / ".state").glob("*.json"):
        try:
            found.add(json.loads(path.read_text())["student"])
        except (OSError, ValueError, KeyError):
            pass
    return found


def test_client_killed_then_resume(cluster, batch, reference):
    name = "killclient"
    out = batch["root"] / f"out_{name}"
    kill_after = 2
    grade = _start_grade(batch, name, cluster.address)
    seen, lines = 0, []
    watchdog = threading.Timer(180, lambda: os.killpg(grade.pid, signal.SIGKILL))
    watchdog.start()
    try:
        for line in grade.stderr:
            lines.append(line)
            seen += bool(PROGRESS.match(line))
            if seen >= kill_after:
                break
    finally:
        watchdog.cancel()
        try:
            os.killpg(grade.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        grade.wait(timeout=30)
    assert seen == kill_after, "".join(lines)[-3000:]
    finished = _state_students(out)
    assert kill_after <= len(finished) < N_STUDENTS, sorted(finished)

    rerun = run_cli(*_args(batch, name, "--scheduler", cluster.address), timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    redone = _progress(rerun.stderr)
    assert sorted(redone) == sorted(set(batch["students"]) - finished), (sorted(finished), redone)
    _same_files(reference, out)
    _check_gradebook(_course(batch, name), batch["students"])


def test_unreachable_scheduler_is_a_usage_error(batch):
    port = _free_port()  # nothing listens there
    proc = run_cli(
        *_args(batch, "unreachable", "--scheduler", "tcp://127.0.0.1:%d" % port),
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("autograder: error: cannot reach the Dask scheduler"), proc.stderr
    assert not (batch["root"] / "out_unreachable" / "grades.csv").exists()


def test_a_worker_unlike_the_client_is_refused(cluster):
    """Other grading code or packages on a worker (here: the client's fingerprint changed)."""
    from autograder.config import UserError
    from autograder.distributed import DaskPool

    pool = DaskPool(cluster.address)
    try:
        assert pool.slots == 2
        pool.check_workers()  # the same checkout: accepted
        pool.fingerprint = "0" * 64
        with pytest.raises(UserError, match="other grader code or package versions"):
            pool.check_workers()
    finally:
        pool.close()


def test_scheduler_lost_stops_without_error_rows(batch, tmp_path):
    """The scheduler killed mid-run: grade stops (exit 1) and records no row for the submissions
    in flight; what it committed before stays (a rerun resumes from there)."""
    name = "schedulerlost"
    small = Cluster(tmp_path)  # a cluster of its own: this test kills its scheduler
    try:
        small.add_worker("solo")
        grade = _start_grade(
            batch, name, small.address, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s"
        )
        lines = []
        watchdog = threading.Timer(180, lambda: os.killpg(grade.pid, signal.SIGKILL))
        watchdog.start()
        try:
            for line in grade.stderr:
                lines.append(line)
                if PROGRESS.match(line):
                    os.killpg(small.procs[0].pid, signal.SIGKILL)  # the scheduler
                    break
            lines.extend(grade.stderr)
            grade.wait(timeout=60)
        finally:
            watchdog.cancel()
            if grade.poll() is None:
                os.killpg(grade.pid, signal.SIGKILL)
                grade.wait()
    finally:
        small.close()
    text = "".join(lines)
    assert grade.returncode == 1, text[-3000:]
    assert "autograder: error: lost the Dask scheduler at %s" % small.address in text, text
    out = batch["root"] / f"out_{name}"
    states = [json.loads(p.read_text()) for p in (out / ".state").glob("*.json")]
    assert sorted(s["student"] for s in states) == sorted(_progress(text)), text
    assert [s["student"] for s in states if s["status"] != "ok"] == [], text
