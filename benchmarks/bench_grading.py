"""Grading throughput, overhead and memory on a synthetic class (prints a table; not a test).

    python benchmarks/bench_grading.py                    # 20 students x every series notebook
    python benchmarks/bench_grading.py --students 8 --quick

Builds a class of synthetic students for the series notebooks found in notebooks/: each
(student, assignment) gets the source answers, the untouched release stubs, or recorded wrong
answers (autograder/wrong_answers/NN_slug.json), in rotation. Then, on the same submissions:

1. `python -m autograder grade --jobs 1` and `--jobs 2` (sandbox on): submissions per minute;
2. plain nbclient execution of the same submission notebooks, one after the other, in one
   process (no sandbox, no gradebook, no feedback): the baseline for the grader's overhead;
3. peak memory: the process tree is sampled every 0.2 s; "per worker" is the peak RSS summed
   over one submission's processes (sandbox, runner, kernel), "tree" the peak of the whole run.

Goals: grader --jobs 1 / nbclient <= 1.3; --jobs 2 throughput >= 1.8 x --jobs 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from adversarial.fixture import strip_markers  # noqa: E402
from adversarial.harness import PYTHON, grader_cmd, grader_env, read_csv  # noqa: E402

VARIANTS = ("source", "stub", "wrong")


def series(source: Path) -> list[str]:
    return sorted(
        p.parent.name
        for p in source.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
        if p.parent.name == p.stem
    )


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def build_class(
    course: Path, source: Path, assignments: list[str], students: int, sub: Path
) -> dict:
    """Write sub/<student>/<asg>/<asg>.ipynb for every student; return {variant: count}."""
    counts = dict.fromkeys(VARIANTS, 0)
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
            variant = VARIANTS[(i + a_index) % len(VARIANTS)]
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


class TreeSampler:
    """Samples the RSS of a process and its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = 0
        self.peak_group = 0  # largest RSS sum of one submission's process group (worker)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            total, groups = 0, {}
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    key = self._worker_of(p)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                if key is not None:
                    groups[key] = groups.get(key, 0) + rss
            self.peak_tree = max(self.peak_tree, total)
            self.peak_group = max([self.peak_group, *groups.values()])
            time.sleep(self.interval)

    def _worker_of(self, proc):
        """The grader's direct child this process descends from (None for the grader itself)."""
        chain = proc
        while True:
            parent = chain.parent()
            if parent is None:
                return None
            if parent.pid == self.root.pid:
                return chain.pid
            chain = parent

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def run_grader(course: Path, source: Path, sub: Path, out: Path, jobs: int, args) -> dict:
    cmd = grader_cmd(
        course,
        source,
        "grade",
        sub,
        "--out",
        out,
        "--jobs",
        str(jobs),
        "--cell-timeout",
        str(args.cell_timeout),
        "--timeout",
        str(args.timeout),
    )
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=grader_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with TreeSampler(proc.pid) as sampler:
        _, err = proc.communicate(timeout=args.run_timeout)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"grade --jobs {jobs} failed ({proc.returncode}):\n{err[-3000:]}")
    rows = read_csv(out / "grades.csv")
    statuses = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return dict(
        wall=wall,
        n=len(rows),
        peak_group=sampler.peak_group,
        peak_tree=sampler.peak_tree,
        statuses=statuses,
        rows={(r["student"], r["assignment"]): r for r in rows},
    )


BASELINE = textwrap.dedent("""\
    import shutil, sys, tempfile, time, json
    from pathlib import Path
    import nbformat
    from nbclient import NotebookClient
    paths, cell_timeout = json.loads(sys.argv[1]), float(sys.argv[2])
    start = time.monotonic()
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": tmp}}).execute()
    print(time.monotonic() - start)
    """)


def run_baseline(paths: list[Path], args) -> dict:
    """Plain nbclient, sequential, one subprocess (its own start-up not counted)."""
    proc = subprocess.Popen(
        [PYTHON, "-c", BASELINE, json.dumps([str(p) for p in paths]), str(args.cell_timeout)],
        cwd=tempfile.gettempdir(),
        env=grader_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with TreeSampler(proc.pid) as sampler:
        out, err = proc.communicate(timeout=args.run_timeout)
    if proc.returncode != 0:
        sys.exit(f"nbclient baseline failed:\n{err[-3000:]}")
    return dict(
        wall=float(out.strip().splitlines()[-1]),
        n=len(paths),
        peak_tree=sampler.peak_tree,
        peak_group=sampler.peak_tree,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=20, help="class size (default 20)")
    ap.add_argument(
        "--quick", action="store_true", help="only the first two series notebooks (a short run)"
    )
    ap.add_argument("--assignments", nargs="*", help="grade only these assignments")
    ap.add_argument("--source", type=Path, default=REPO / "notebooks")
    ap.add_argument("--cell-timeout", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--run-timeout", type=float, default=3600, help="bound on each grading run (s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    if args.students < 1:
        ap.error(f"--students must be >= 1, got {args.students}")

    assignments = args.assignments or series(args.source)
    if args.quick and not args.assignments:
        assignments = assignments[:2]
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
        counts = build_class(course0, args.source, assignments, args.students, sub)
        n = args.students * len(assignments)
        print(
            f"class: {args.students} students x {len(assignments)} notebooks = {n} submissions "
            f"({', '.join(f'{v} {c}' for v, c in counts.items())}); notebooks: {' '.join(assignments)}",
            flush=True,
        )

        results = {}
        for jobs in (1, 2):
            course = work / f"course_jobs{jobs}"
            shutil.copytree(course0, course, symlinks=True)
            results[jobs] = run_grader(
                course, args.source, sub, work / f"out_jobs{jobs}", jobs, args
            )
            print(
                f"grade --jobs {jobs}: {results[jobs]['wall']:.1f} s {results[jobs]['statuses']}",
                flush=True,
            )
        paths = sorted(sub.glob("*/*/*.ipynb"))
        base = run_baseline(paths, args)
        print(f"nbclient sequential: {base['wall']:.1f} s", flush=True)

        same = results[1]["rows"] == results[2]["rows"]
        per_min = {j: 60 * r["n"] / r["wall"] for j, r in results.items()}
        overhead = results[1]["wall"] / base["wall"]
        speedup = per_min[2] / per_min[1]
        mb = 2**20
        print()
        print(
            f"{'run':28} {'wall s':>8} {'subm/min':>9} {'peak/worker MB':>15} {'peak tree MB':>13}"
        )
        print(
            f"{'nbclient, sequential':28} {base['wall']:8.1f} {60 * n / base['wall']:9.1f} "
            f"{base['peak_group'] / mb:15.0f} {base['peak_tree'] / mb:13.0f}"
        )
        for jobs, r in results.items():
            print(
                f"{f'grader --jobs {jobs} (sandbox)':28} {r['wall']:8.1f} {per_min[jobs]:9.1f} "
                f"{r['peak_group'] / mb:15.0f} {r['peak_tree'] / mb:13.0f}"
            )
        print()
        print(
            f"overhead grader --jobs 1 / nbclient: {overhead:.2f}x (goal <= 1.3x) "
            f"{'OK' if overhead <= 1.3 else 'MISSED'}"
        )
        print(
            f"speed-up --jobs 2 / --jobs 1:        {speedup:.2f}x (goal >= 1.8x) "
            f"{'OK' if speedup >= 1.8 else 'MISSED'}"
        )
        print(f"--jobs 2 grades identical to --jobs 1: {same}")
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
