"""Grading throughput, time per submission and memory, side by side (prints tables; not a test).

    python benchmarks/bench_grading.py --quick     # 6 solved copies of 01_chain_rule: a few minutes
    python benchmarks/bench_grading.py             # 20 students x every series notebook
    python benchmarks/bench_grading.py --students 8 --assignments 05_worked_example

Builds a class of synthetic students for the series notebooks found in notebooks/: each
(student, assignment) gets the source answers, the untouched release stubs, or recorded wrong
answers (autograder/wrong_answers/NN_slug.json), in rotation (`--quick`: 6 students, all with the
source answers, 01_chain_rule only). Then, on the same submissions and each on a fresh copy of the
released course:

1. plain `nbgrader autograde ASSIGNMENT`: nbgrader's own command, run from autograder/ with the
   course's nbgrader_config.py (one kernel per notebook, no sandbox, no feedback pages);
2. `python -m autograder grade --jobs 1` and 3. `--jobs 2` (sandbox on);
4. `grade --scheduler` on a Dask scheduler started here with one worker (1 thread), and 5. with
   two workers (1 thread each), all on 127.0.0.1.

Columns: wall time of the command, seconds per submission (wall / submissions), time relative to
nbgrader, and peak memory, as PSS (shared pages split between the processes that share them,
sampled every 0.2 s): "job" is one notebook's processes (forked evaluator, sandbox, driver,
kernel; for nbgrader its kernel), "total" every process of the run (the Dask scheduler and
workers included).

Then "where the time goes": the grader's steps for one submission, from one `--jobs 1` run of the
same notebooks in this process with timers around the steps (kernel start, the set-up cell's
imports, the other cells, the evaluator, feedback rendering, the gradebook commit).

Goals (issue 14): grade --jobs 1 <= 0.5x nbgrader autograde; --jobs 2 >= 1.8x --jobs 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
from adversarial.fixture import strip_markers  # noqa: E402
from adversarial.harness import VENV_BIN, grader_cmd, grader_env, read_csv  # noqa: E402

VARIANTS = ("source", "stub", "wrong")
QUICK = dict(students=6, assignments=["01_chain_rule"], variants=("source",))


def series(source: Path) -> list[str]:
    return sorted(
        p.parent.name
        for p in source.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
        if p.parent.name == p.stem
    )


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def build_class(course, source, assignments, students, sub, variants=VARIANTS) -> dict:
    """Write sub/<student>/<asg>/<asg>.ipynb for every student; return {variant: count}."""
    counts = dict.fromkeys(variants, 0)
    for a_index, asg in enumerate(assignments):
        release = nbformat.read(course / "release" / asg / f"{asg}.ipynb", as_version=4)
        src = nbformat.read(source / asg / f"{asg}.ipynb", as_version=4)
        answers = {
            _gid(c): strip_markers(c.source)
            for c in src.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"
        }
        wrong_file = REPO / "autograder" / "wrong_answers" / f"{asg}.json"
        wrong = json.loads(wrong_file.read_text()) if wrong_file.exists() else {}
        for i in range(students):
            variant = variants[(i + a_index) % len(variants)]
            nb = nbformat.from_dict(json.loads(nbformat.writes(release)))
            for cell in nb.cells:
                gid = _gid(cell)
                if variant == "source" and gid in answers:
                    cell.source = answers[gid]
                elif variant == "wrong" and wrong.get(gid):
                    cell.source = wrong[gid][i % len(wrong[gid])]["source"]
            path = sub / f"student{i:03d}" / asg / f"{asg}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            counts[variant] += 1
    return counts


# ------------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------------

JOB_PARENTS = ("autograder.worker", "autograder.distributed")


class TreeSampler:
    """Peak PSS of the process trees under `pids`: of all of it, and of one job's processes."""

    def __init__(self, pids, interval=0.2):
        self.roots = [psutil.Process(p) for p in pids]
        self.interval = interval
        self.peak_total = self.peak_job = 0
        self._cmd = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cmdline(self, proc):
        if proc.pid not in self._cmd:
            try:
                self._cmd[proc.pid] = " ".join(proc.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._cmd[proc.pid] = ""
        return self._cmd[proc.pid]

    def _is_job(self, proc, parent):
        """A forked child of a warm parent (one notebook), or nbgrader's kernel."""
        if parent is None:
            return False
        mine = self._cmdline(proc)
        if any(m in mine for m in JOB_PARENTS):
            return any(m in self._cmdline(parent) for m in JOB_PARENTS)
        return "ipykernel_launcher" in mine and not any(
            m in self._cmdline(parent) for m in ("bpkit_sandbox", "sandbox.driver", "prlimit")
        )

    def _run(self):
        while not self._stop.is_set():
            procs = []
            for root in self.roots:
                try:
                    procs += [root] + root.children(recursive=True)
                except psutil.NoSuchProcess:
                    pass
            parents, sizes = {}, {}
            for p in procs:
                try:
                    parents[p.pid] = p.ppid()
                    try:
                        sizes[p.pid] = p.memory_full_info().pss
                    except (psutil.AccessDenied, AttributeError):
                        sizes[p.pid] = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            byid = {p.pid: p for p in procs}
            jobs = defaultdict(int)
            for pid, size in sizes.items():
                chain = pid
                while chain in byid:  # the nearest job root above (or at) this process
                    parent = byid.get(parents.get(chain))
                    if self._is_job(byid[chain], parent):
                        jobs[chain] += size
                        break
                    chain = parents.get(chain)
            self.peak_total = max(self.peak_total, sum(sizes.values()))
            self.peak_job = max([self.peak_job, *jobs.values()])
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------------------------------------
# the runs
# ------------------------------------------------------------------------------------------------


def _timed(cmd, *, cwd, env, extra_pids=(), timeout=3600):
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with TreeSampler([proc.pid, *extra_pids]) as sampler:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd[:6]))} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return dict(wall=wall, peak_job=sampler.peak_job, peak_total=sampler.peak_total)


def run_grader(course, source, sub, out, args, *extra, extra_pids=()):
    cmd = grader_cmd(
        course,
        source,
        "grade",
        sub,
        "--out",
        out,
        "--cell-timeout",
        str(args.cell_timeout),
        "--timeout",
        str(args.timeout),
        *extra,
    )
    res = _timed(cmd, cwd=REPO, env=grader_env(), extra_pids=extra_pids, timeout=args.run_timeout)
    rows = read_csv(out / "grades.csv")
    statuses = defaultdict(int)
    for row in rows:
        statuses[row["status"]] += 1
    res.update(
        n=len(rows),
        statuses=dict(statuses),
        rows={(r["student"], r["assignment"]): r for r in rows},
    )
    return res


def run_nbgrader(course, source, sub, assignments, args):
    """Plain `nbgrader autograde` for each assignment, from autograder/ (the course config)."""
    shutil.copytree(sub, course / "submitted")
    env = grader_env()
    env["BPKIT_COURSE_DIR"], env["BPKIT_SOURCE_DIR"] = str(course), str(source)
    total = dict(wall=0.0, peak_job=0, peak_total=0)
    for asg in assignments:
        res = _timed(
            [VENV_BIN / "nbgrader", "autograde", asg],
            cwd=REPO / "autograder",
            env=env,
            timeout=args.run_timeout,
        )
        total["wall"] += res["wall"]
        total["peak_job"] = max(total["peak_job"], res["peak_job"])
        total["peak_total"] = max(total["peak_total"], res["peak_total"])
    graded = list((course / "autograded").glob("*/*/*.ipynb"))
    total["n"] = len(list(sub.glob("*/*/*.ipynb")))
    if len(graded) != total["n"]:
        sys.exit(f"nbgrader autograde wrote {len(graded)} of {total['n']} notebooks")
    total["scores"] = nbgrader_scores(course, assignments)
    return total


def nbgrader_scores(course, assignments):
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for asg in assignments:
            for s in gb.assignment_submissions(asg):
                scores[(s.student.id, asg)] = s.score
    return scores


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1 (process groups of their own)."""

    def __init__(self, workers, log_dir):
        from distributed import Client

        env = grader_env()
        env["PYTHONPATH"] = str(REPO)
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs = []
        dask = [str(VENV_BIN / "dask")]
        port = self.address.rsplit(":", 1)[1]
        scheduler = ["scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"]
        self._start(dask + scheduler + ["--idle-timeout", "3600"], env, log_dir / "scheduler.log")
        worker = ["worker", self.address, "--host", "127.0.0.1", "--nthreads", "1"]
        worker += ["--memory-limit", "0", "--no-dashboard", "--death-timeout", "60"]
        for k in range(workers):
            self._start(dask + worker, env, log_dir / f"worker{k}.log")
        self.client = Client(self.address, timeout=60, set_as_default=False)
        self.client.wait_for_workers(workers, timeout=180)

    def _start(self, cmd, env, log):
        with open(log, "wb") as f:
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=log.parent,
                    start_new_session=True,
                )
            )

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def close(self):
        self.client.close()
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# ------------------------------------------------------------------------------------------------
# where the time goes: one --jobs 1 run in this process, with timers around the steps
# ------------------------------------------------------------------------------------------------

STEPS = [
    ("sandbox set-up (uid, cgroup, spawn bwrap)", "spawn"),
    ("bwrap + driver interpreter start", "driver_start"),
    ("kernel start (ipykernel, agent import)", "kernel_start"),
    ("set-up cell in the kernel (imports)", "imports"),
    ("other cells in the kernel", "cells"),
    ("evaluator's calls into the kernel", "agent"),
    ("evaluator's own work (test cells)", "evaluator"),
    ("sandbox teardown", "close"),
    ("rest of worker.evaluate", "evaluate_rest"),
    ("prepare + score + executed notebook", "prepare"),
    ("feedback page (rendered in a child)", "feedback"),
    ("commit (autograded copy, gradebook, state)", "commit"),
]


def profile(course, source, sub, out, args):
    """Returns ({step: mean seconds per notebook}, notebooks, wall seconds of the run)."""
    from autograder import evaluator, grading, launch, worker
    from autograder.config import Course
    from autograder.settings import GraderSettings

    worker._warm_up()  # what the warm parent has loaded before it forks a job
    spent = defaultdict(float)
    state = threading.local()

    def wrap(owner, name, fn):
        original = getattr(owner, name)

        def timed(*a, **kw):
            t = time.monotonic()
            try:
                return original(*a, **kw)
            finally:
                fn(time.monotonic() - t, a, kw)

        setattr(owner, name, timed)
        return original

    def add(key):
        return lambda dt, a, kw: spent.__setitem__(key, spent[key] + dt)

    def on_start(dt, a, kw):
        driver, cells = a[0], a[1]
        driver._bench_cells = sorted(c["index"] for c in cells)
        driver._bench_reached = -1
        kernel = getattr(driver, "_bench_kernel", 0.0)
        spent["kernel_start"] += kernel
        spent["driver_start"] += dt - kernel

    def on_request(dt, a, kw):
        driver, cmd = a[0], a[1]
        what = cmd.get("cmd")
        if getattr(state, "in_eval", False):
            state.waited += dt
        if what == "run_until":
            setup = driver._bench_cells[0] if driver._bench_cells else None
            covered = setup is not None and driver._bench_reached < setup < cmd["index"]
            spent["imports" if covered else "cells"] += dt
            driver._bench_reached = max(driver._bench_reached, cmd["index"] - 1)
        elif what == "agent":
            spent["agent"] += dt
        else:
            spent["cells"] += dt

    original_recv = launch.Driver.recv

    def recv(self, timeout):  # the driver's own kernel-start time, from its "ready" reply
        reply = original_recv(self, timeout)
        if reply.get("event") == "ready":
            self._bench_kernel = float(reply.get("seconds") or 0)
        return reply

    launch.Driver.recv = recv
    wrap(launch.Driver, "__init__", add("spawn"))
    wrap(launch.Driver, "start", on_start)
    wrap(launch.Driver, "request", on_request)
    wrap(launch.Driver, "close", add("close"))
    original_run = evaluator.Evaluator.run

    def run(self, *a, **kw):
        state.in_eval, state.waited = True, 0.0
        t = time.monotonic()
        try:
            return original_run(self, *a, **kw)
        finally:
            state.in_eval = False
            spent["evaluator"] += time.monotonic() - t - state.waited

    evaluator.Evaluator.run = run
    wrap(grading, "feedback_html", add("feedback"))
    wrap(grading.Grader, "commit", add("commit"))
    wrap(grading.Grader, "process", add("process"))

    class InProcessPool:  # worker.evaluate here, not in a forked child: the timers see it
        def evaluate(self, job, timeout):
            t = time.monotonic()
            try:
                return worker.evaluate(job)
            finally:
                spent["evaluate"] += time.monotonic() - t

        def close(self):
            pass

    grading.WorkerPool = InProcessPool
    settings = GraderSettings(
        jobs=1, cell_timeout=args.cell_timeout, timeout=args.timeout, sandbox=True
    )
    t0 = time.monotonic()
    with open(os.devnull, "w") as quiet:
        grading.Grader(Course(course, source), sub, out, settings, log=quiet).run()
    wall = time.monotonic() - t0
    n = len(list(sub.glob("*/*/*.ipynb")))
    inside = sum(spent[k] for k in ("spawn", "driver_start", "kernel_start", "imports", "cells"))
    inside += sum(spent[k] for k in ("agent", "evaluator", "close"))
    spent["evaluate_rest"] = spent["evaluate"] - inside
    spent["prepare"] = spent["process"] - spent["evaluate"] - spent["feedback"]
    return {k: spent[k] / n for _, k in STEPS}, n, wall


# ------------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=20, help="class size (default 20)")
    ap.add_argument(
        "--quick", action="store_true", help="6 solved copies of 01_chain_rule (a few minutes)"
    )
    ap.add_argument("--assignments", nargs="*", help="grade only these assignments")
    ap.add_argument("--source", type=Path, default=REPO / "notebooks")
    ap.add_argument("--cell-timeout", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--run-timeout", type=float, default=3600, help="bound on each grading run (s)")
    ap.add_argument("--no-dask", action="store_true", help="skip the two Dask runs")
    ap.add_argument(
        "--rounds", type=int, default=1, help="run everything N times, keep each run's best"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    if args.students < 1 or args.rounds < 1:
        ap.error("--students and --rounds must be >= 1")

    variants = VARIANTS
    assignments = args.assignments or series(args.source)
    if args.quick:
        args.students, variants = QUICK["students"], QUICK["variants"]
        assignments = args.assignments or QUICK["assignments"]
    if not assignments:
        sys.exit(f"no series notebooks under {args.source}")
    work = Path(tempfile.mkdtemp(prefix="bench_grading_"))
    try:
        course0 = work / "course0"
        proc = subprocess.run(
            grader_cmd(course0, args.source, "release", *assignments),
            cwd=REPO,
            env=grader_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            sys.exit(f"release failed:\n{proc.stderr[-3000:]}")
        sub = work / "submissions"
        counts = build_class(course0, args.source, assignments, args.students, sub, variants)
        n = args.students * len(assignments)
        print(
            f"class: {args.students} students x {len(assignments)} notebooks = {n} submissions "
            f"({', '.join(f'{v} {c}' for v, c in counts.items())}); notebooks: "
            f"{' '.join(assignments)}; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )

        def fresh(name):
            course = work / f"course_{name}"
            shutil.copytree(course0, course, symlinks=True)
            return course

        def nbgrader_run(tag):
            return run_nbgrader(fresh(f"nbgrader{tag}"), args.source, sub, assignments, args)

        def grade_run(jobs):
            def run(tag):
                out = work / f"out_jobs{jobs}{tag}"
                course = fresh(f"jobs{jobs}{tag}")
                return run_grader(course, args.source, sub, out, args, "--jobs", str(jobs))

            return run

        def dask_run(workers):
            def run(tag):
                logs = work / f"dask{workers}{tag}"
                logs.mkdir()
                cluster = LocalCluster(workers, logs)
                try:
                    return run_grader(
                        fresh(f"dask{workers}{tag}"), args.source, sub, work / f"out_{logs.name}",
                        args, "--scheduler", cluster.address, extra_pids=cluster.pids,
                    )  # fmt: skip
                finally:
                    cluster.close()

            return run

        plan = [("nbgrader autograde", nbgrader_run)]
        plan += [(f"grade --jobs {j}", grade_run(j)) for j in (1, 2)]
        if not args.no_dask:
            plan += [("grade --scheduler, 1 worker", dask_run(1))]
            plan += [("grade --scheduler, 2 workers", dask_run(2))]
        runs = {}
        for r in range(args.rounds):  # best of N; the order rotates so load hits all alike
            for name, fn in plan[r % len(plan) :] + plan[: r % len(plan)]:
                res = fn(f"_r{r}")
                print(f"{name}: {res['wall']:.1f} s {res.get('statuses', '')}", flush=True)
                best = runs.get(name)
                if best is None or res["wall"] < best["wall"]:
                    runs[name] = res
        runs = {name: runs[name] for name, _ in plan}
        steps, n_prof, prof_wall = profile(
            fresh("profile"), args.source, sub, work / "out_profile", args
        )

        base = runs["nbgrader autograde"]["wall"]
        mb = 2**20
        print()
        print(
            f"{'run':32} {'wall s':>7} {'s/subm':>7} {'x nbgrader':>10} "
            f"{'peak job MB':>11} {'peak total MB':>13}"
        )
        for name, r in runs.items():
            print(
                f"{name:32} {r['wall']:7.1f} {r['wall'] / n:7.2f} {r['wall'] / base:10.2f} "
                f"{r['peak_job'] / mb:11.0f} {r['peak_total'] / mb:13.0f}"
            )
        grade_runs = [r for name, r in runs.items() if name.startswith("grade")]
        same = all(r["rows"] == grade_runs[0]["rows"] for r in grade_runs)
        ours = {k: float(r["score"]) for k, r in grade_runs[0]["rows"].items()}
        theirs = runs["nbgrader autograde"]["scores"]
        j1, j2 = runs["grade --jobs 1"]["wall"], runs["grade --jobs 2"]["wall"]
        print()
        print(f"grade --jobs 1 / nbgrader autograde: {j1 / base:.2f}x (goal <= 0.5x)")
        print(f"speed-up --jobs 2 / --jobs 1:        {j1 / j2:.2f}x (goal >= 1.8x)")
        if not args.no_dask:
            d1 = runs["grade --scheduler, 1 worker"]["wall"]
            d2 = runs["grade --scheduler, 2 workers"]["wall"]
            print(f"speed-up Dask 2 workers / 1 worker:  {d1 / d2:.2f}x")
            print(f"Dask 1 worker / --jobs 1:            {d1 / j1:.2f}x")
        print(f"every grade run wrote the same grades.csv rows: {same}")
        print(
            "nbgrader's scores equal grade's: "
            f"{sum(abs(theirs.get(k, -1) - v) < 1e-9 for k, v in ours.items())} of {len(ours)}"
        )
        print()
        print(
            f"where the time of one submission goes (grade --jobs 1 in this process, timers "
            f"around each step; mean of {n_prof}):"
        )
        total = sum(steps.values())
        for label, key in STEPS:
            print(f"  {label:44} {steps[key]:6.2f} s {100 * steps[key] / total:5.1f} %")
        print(f"  {'sum':44} {total:6.2f} s")
        print(
            f"  {'run wall / submissions (start-up, CSVs)':44} {prof_wall / n_prof:6.2f} s; "
            f"grade --jobs 1 (subprocess, forked jobs): {j1 / n:.2f} s"
        )
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
