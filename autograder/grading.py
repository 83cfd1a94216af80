"""grade: sandboxed, parallel, resumable grading of a submitted/ tree into CSVs, feedback and the
nbgrader gradebook. See autograder/README.md for the status rules."""

import csv
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import launch
from .config import NAME_RE, UserError
from .nbtools import (
    exercise_of,
    fmt,
    graded_cells,
    nbg,
    prepare_submission,
    read_notebook_text,
)
from .score import PRIORITY, score_notebook
from .worker import WorkerPool

# files nbgrader's exchange puts beside a collected submission (kept for its feedback commands)
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")
GRADER_VERSION = "2"  # verdicts by the evaluator
MAX_BYTES = 20 << 20


@dataclass
class Task:
    student: str
    assignment: str
    folder: Path | None
    status: str | None = None  # set when decided without running (invalid/missing)
    reason: str = ""
    key: str = ""


def _atomic_write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".%s.tmp%d" % (path.name, threading.get_ident()))
    with open(tmp, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_regular(path, limit=MAX_BYTES):
    """Bytes of a regular file, refusing symlinks and files over `limit` (ValueError)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise ValueError("%s is a symbolic link" % Path(path).name) from None
        raise ValueError("%s cannot be read (%s)" % (Path(path).name, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("%s is not a regular file" % Path(path).name)
        if st.st_size > limit:
            raise ValueError(
                "%s is %.1f MB, over the %d MB limit"
                % (Path(path).name, st.st_size / 2**20, limit >> 20)
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ValueError("%s is over the %d MB limit" % (Path(path).name, limit >> 20))
        return data
    finally:
        os.close(fd)


class Grader:
    def __init__(self, course, submissions, outdir, settings, log=sys.stderr):
        self.course, self.settings, self.log = course, settings, log
        self.subdir = Path(submissions)
        self.outdir = Path(outdir)
        if not self.subdir.is_dir():
            raise UserError("submissions folder %s does not exist or is not a folder" % submissions)
        if (
            self.outdir.resolve() == self.subdir.resolve()
            or self.subdir.resolve() in self.outdir.resolve().parents
        ):
            raise UserError("--out must not be inside the submissions folder %s" % submissions)
        if settings.jobs < 1:
            raise UserError("--jobs must be >= 1, got %d" % settings.jobs)
        for name in ("cell_timeout", "timeout", "memory"):
            if getattr(settings, name) <= 0:
                raise UserError(
                    "--%s must be > 0, got %s" % (name.replace("_", "-"), getattr(settings, name))
                )
        if settings.sandbox and not launch.bwrap_path():
            raise UserError(
                "bubblewrap (bwrap) not found: install it, or pass --no-sandbox "
                "to run submissions unconfined"
            )
        self.known = course.assignments()
        if not self.known:
            raise UserError("no assignments found in %s" % course.source)
        self.sources, self.src_bytes, self.data = {}, {}, {}

    # ---------- discovery ----------
    def discover(self):
        students = {}
        for entry in sorted(os.listdir(self.subdir)):
            path = self.subdir / entry
            if entry.startswith("."):
                if path.is_dir() and not path.is_symlink():
                    students[entry] = (
                        "invalid",
                        "hidden folder name %r (starts with a dot)" % entry,
                    )
                else:
                    self.log.write(
                        "autograder: ignoring hidden entry %r at the top of the submissions\n"
                        % entry
                    )
                continue
            if path.is_symlink():
                students[entry] = ("invalid", "student folder is a symbolic link")
            elif not path.is_dir():
                self.log.write(
                    "autograder: ignoring file %s at the top of the submissions\n" % entry
                )
            elif not NAME_RE.match(entry):
                students[entry] = ("invalid", "odd student folder name %r" % entry)
            else:
                students[entry] = None
        if not students:
            raise UserError(
                "no student folders in %s (expected <student>/<assignment>/"
                "<notebook>.ipynb)" % self.subdir
            )
        scope, extra = set(), []
        for student, problem in students.items():
            if problem:
                continue
            for entry in sorted(os.listdir(self.subdir / student)):
                path = self.subdir / student / entry
                if entry in self.known:
                    scope.add(entry)
                elif path.is_dir() and not entry.startswith("."):
                    extra.append(
                        Task(
                            student, entry, path, "invalid", "unknown assignment folder %r" % entry
                        )
                    )
        if not scope:
            scope = set()
        tasks = list(extra)
        for student, problem in students.items():
            for assignment in sorted(scope):
                if problem:
                    tasks.append(Task(student, assignment, None, *problem))
                    continue
                folder = self.subdir / student / assignment
                if not folder.exists() and not folder.is_symlink():
                    tasks.append(
                        Task(student, assignment, None, "missing", "no folder %s" % assignment)
                    )
                elif folder.is_symlink() or not folder.is_dir():
                    tasks.append(
                        Task(
                            student,
                            assignment,
                            folder,
                            "invalid",
                            "%s is a symbolic link or not a folder" % assignment,
                        )
                    )
                else:
                    tasks.append(Task(student, assignment, folder))
        if not tasks:
            raise UserError(
                "no assignment folders of known assignments (%s) in %s"
                % (", ".join(self.known), self.subdir)
            )
        return sorted(tasks, key=lambda t: (t.student, t.assignment)), sorted(scope)

    def load_sources(self, scope):
        cache = self.outdir / ".cache"
        self.mpl = launch.prepare_mpl_cache(cache / "mpl")
        for a in scope:
            for name in self.course.notebooks(a):
                raw = self.course.source_path(a, name).read_bytes()
                self.src_bytes[(a, name)] = raw
                self.sources[(a, name)] = nbformat.reads(raw.decode(), as_version=4)
            files = [
                p
                for p in sorted((self.course.source / a).iterdir())
                if p.suffix != ".ipynb" and not p.name.startswith(".")
            ]
            self.data[a] = None
            if files:
                dest = cache / "data" / a
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir(parents=True)
                for p in files:
                    (shutil.copytree if p.is_dir() else shutil.copy)(p, dest / p.name)
                self.data[a] = dest

    def key_of(self, task):
        h = hashlib.sha256()
        s = self.settings
        h.update(
            json.dumps(
                [
                    GRADER_VERSION,
                    s.sandbox,
                    s.cell_timeout,
                    s.timeout,
                    s.memory,
                    task.student,
                    task.assignment,
                    task.status,
                    task.reason,
                ]
            ).encode()
        )
        for name in self.course.notebooks(task.assignment):
            h.update(self.src_bytes.get((task.assignment, name), b""))
            if task.folder is not None and task.status is None:
                try:
                    h.update(_read_regular(task.folder / (name + ".ipynb")))
                except ValueError as exc:
                    h.update(str(exc).encode())
        if task.folder is not None and task.status is None:
            h.update(json.dumps(sorted(os.listdir(task.folder))).encode())
        return h.hexdigest()

    # ---------- one submission (worker thread) ----------
    def process(self, task):
        t0 = time.monotonic()
        a = task.assignment
        names = self.course.notebooks(a) if a in self.known else []
        res = {"student": task.student, "assignment": a, "key": task.key, "notebooks": {}}
        statuses, reasons = [], []
        skip = bool(task.status)
        if task.status:
            statuses.append(task.status)
            reasons.append(task.reason)
        else:
            entries = [e for e in sorted(os.listdir(task.folder)) if not e.startswith(".")]
            expected = {n + ".ipynb" for n in names}
            others = [e for e in entries if e not in expected and e not in EXCHANGE_FILES]
            if not entries:
                skip = True
                statuses.append("missing")
                reasons.append("empty folder")
            elif others:
                if not expected & set(entries):  # named in the "renamed?" reason instead
                    others = [e for e in others if not e.endswith(".ipynb")]
            if others:
                reasons.append(
                    "ignored extra files: %s%s"
                    % (
                        ", ".join(repr(e) if not NAME_RE.match(e) else e for e in others[:5]),
                        " ..." if len(others) > 5 else "",
                    )
                )
        for name in names:
            src = self.sources[(a, name)]
            nb_res = {
                "grades": {
                    g["grade_id"]: (0.0 if g["kind"] == "test" else None) for g in graded_cells(src)
                },
                "review": [],
                "feedback": None,
            }
            res["notebooks"][name] = nb_res
            if skip:
                continue
            path = task.folder / (name + ".ipynb")
            if not path.exists() and not path.is_symlink():
                found = [e for e in os.listdir(task.folder) if e.endswith(".ipynb")]
                statuses.append("missing")
                reasons.append(
                    "no %s.ipynb%s"
                    % (name, " (found %s: renamed?)" % ", ".join(found) if found else "")
                )
                continue
            try:
                sub = read_notebook_text(_read_regular(path).decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                statuses.append("invalid")
                reasons.append(str(exc) if isinstance(exc, ValueError) else "not UTF-8 text")
                continue
            except Exception as exc:  # nbformat can fail in odd ways on odd input
                statuses.append("invalid")
                reasons.append("unreadable notebook (%s)" % type(exc).__name__)
                continue
            prepared, notes = prepare_submission(sub, src)
            reasons.extend(notes)
            scored, executed, evaluation = self.run_notebook(src, prepared, a)
            nb_res["grades"].update(scored.grades)
            statuses.extend(scored.statuses)
            reasons.extend(scored.reasons)
            if executed is not None:
                nb_res["executed"] = executed
                html = feedback_html(
                    executed,
                    task,
                    name,
                    nb_res,
                    scored.statuses,
                    scored.reasons,
                    src,
                    evaluation.get("verdicts") or {},
                    self.settings,
                )
                out = self.outdir / "feedback" / task.student / a / (name + ".html")
                _atomic_write(out, html)
                nb_res["feedback"] = str(out.relative_to(self.outdir))
        statuses.append("ok")
        res["status"] = min(statuses, key=PRIORITY.index)
        res["reason"] = "; ".join(dict.fromkeys(r for r in reasons if r))
        res["seconds"] = round(time.monotonic() - t0, 2)
        return res

    def run_notebook(self, src, prepared, assignment):
        """Grade one prepared notebook: (Scored, executed notebook or None, evaluation dict)."""
        s = self.settings
        job = {
            "source": src,
            "prepared": prepared,
            "settings": s.trait_values_for_job(),
            "sandbox": s.sandbox,
            "mpl": str(self.mpl) if self.mpl else None,
            "data": str(self.data[assignment]) if self.data.get(assignment) else None,
        }
        evaluation = self.pool.evaluate(job, timeout=s.timeout + 90)
        labels = {
            i: nbg(c).get("grade_id") or "#%d" % (i + 1) for i, c in enumerate(prepared.cells)
        }
        tests = [(g["grade_id"], g["points"]) for g in graded_cells(src) if g["kind"] == "test"]
        limits = {"cell_timeout": s.cell_timeout, "timeout": s.timeout, "memory": s.memory}
        scored = score_notebook(tests, evaluation, labels, limits)
        executed = None
        if evaluation.get("ready"):
            executed = executed_notebook(prepared, evaluation)
        return scored, executed, evaluation

    # ---------- main ----------
    def run(self):
        tasks, scope = self.discover()
        self.load_sources(scope)
        ensure_gradebook(self.course, scope, self.sources)
        state_dir = self.outdir / ".state"
        state_dir.mkdir(parents=True, exist_ok=True)
        results, todo = {}, []
        for t in tasks:
            t.key = self.key_of(t)
            cached = _load_state(state_dir, t)
            if cached and all(
                (self.outdir / nb["feedback"]).exists()
                for nb in cached["notebooks"].values()
                if nb.get("feedback")
            ):
                results[(t.student, t.assignment)] = cached
            else:
                todo.append(t)
        total = len(tasks)
        if results:
            self.log.write(
                "autograder: %d of %d submissions already graded (resuming)\n"
                % (len(results), total)
            )
        if not self.settings.sandbox:
            self.log.write(
                "autograder: WARNING: --no-sandbox: submissions run unconfined with "
                "your permissions\n"
            )
        from nbgrader.api import Gradebook

        warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush notes
        warnings.filterwarnings("ignore", message=".*not in session.*")
        gb = Gradebook(self.course.db_url, course_id="bpkit")
        if todo and self.settings.scheduler:
            from .distributed import DaskPool

            self.pool = DaskPool(self.settings.scheduler, self.log, self.settings.sandbox)
            # keep every worker thread of the cluster busy: at least that many in flight
            self.settings.jobs = max(self.settings.jobs, self.pool.slots)
        else:
            self.pool = WorkerPool() if todo else None
        if todo and self.settings.sandbox and not launch.cgroups_available():
            self.log.write(
                "autograder: note: no writable memory cgroup here; the memory limit applies to "
                "each kernel alone (prlimit --as)\n"
            )
        bar = None  # a progress bar with ETA on a terminal; the line format otherwise
        if todo and getattr(self.log, "isatty", lambda: False)():
            from tqdm import tqdm

            bar = tqdm(total=total, initial=total - len(todo), file=self.log, unit="subm")
        try:
            for res in list(results.values()):
                write_gradebook(gb, res, self.sources)
            t0, done = time.monotonic(), len(results)
            with ThreadPoolExecutor(max_workers=self.settings.jobs) as pool:
                futures = {pool.submit(self._safe_process, t): t for t in todo}
                for fut in as_completed(futures):
                    res = fut.result()
                    self.commit(gb, res, state_dir)
                    results[(res["student"], res["assignment"])] = res
                    done += 1
                    elapsed = time.monotonic() - t0
                    finished = done - (total - len(todo))
                    eta = elapsed / finished * (total - done) if finished else 0
                    line = "[%d/%d] %s/%s %s %s/%s (%.1f s) elapsed %.1f s, ETA %.1f s" % (
                        done,
                        total,
                        res["student"],
                        res["assignment"],
                        res["status"],
                        fmt(res.get("score")),
                        fmt(res.get("max_score")),
                        res.get("seconds", 0),
                        elapsed,
                        eta,
                    )
                    if bar is None:
                        self.log.write(line + "\n")
                        self.log.flush()
                        continue
                    bar.set_postfix_str(
                        "%s/%s %s" % (res["student"], res["assignment"], res["status"]),
                        refresh=False,
                    )
                    bar.update(1)
                    if res["status"] != "ok":  # problems stay on screen above the bar
                        bar.write(line, file=self.log)
        finally:
            if bar is not None:
                bar.close()
            gb.close()
            if self.pool is not None:
                self.pool.close()
        write_csvs(self.outdir, [results[k] for k in sorted(results)], self.sources)
        return 0

    def _safe_process(self, task):
        try:
            return self.process(task)
        except Exception as exc:  # a grader fault on one submission must not stop the batch
            names = self.course.notebooks(task.assignment) if task.assignment in self.known else []
            return {
                "student": task.student,
                "assignment": task.assignment,
                "key": task.key,
                "status": "error",
                "seconds": 0,
                "reason": "grader error: %s: %s" % (type(exc).__name__, exc),
                "notebooks": {
                    n: {
                        "grades": {
                            g["grade_id"]: (0.0 if g["kind"] == "test" else None)
                            for g in graded_cells(self.sources[(task.assignment, n)])
                        },
                        "review": [],
                        "feedback": None,
                    }
                    for n in names
                },
            }

    def commit(self, gb, res, state_dir):
        """Main thread only: autograded copy, gradebook upsert, then the state file."""
        for name, nb_res in res["notebooks"].items():
            executed = nb_res.pop("executed", None)
            if executed is not None and NAME_RE.match(res["student"]):
                path = (
                    self.course.root
                    / "autograded"
                    / res["student"]
                    / res["assignment"]
                    / (name + ".ipynb")
                )
                _atomic_write(path, nbformat.writes(executed))
                for extra in EXCHANGE_FILES:  # nbgrader's feedback commands look for these
                    try:
                        data = _read_regular(
                            self.subdir / res["student"] / res["assignment"] / extra, 1 << 16
                        )
                    except ValueError:
                        continue
                    _atomic_write(path.parent / extra, data)
        write_gradebook(gb, res, self.sources)
        _atomic_write(_state_path(state_dir, res["student"], res["assignment"]), json.dumps(res))


def _clean_output(out):
    """An output from the sandbox as a valid nbformat output, or None (untrusted input)."""
    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream" and out.get("name") in ("stdout", "stderr"):
        return nbformat.v4.new_output("stream", name=out["name"], text=str(out.get("text", "")))
    if kind in ("display_data", "execute_result"):
        data = out.get("data")
        if not isinstance(data, dict):
            return None
        data = {str(k): v for k, v in data.items() if isinstance(v, str) or _shallow(v)}
        md = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
        new = nbformat.v4.new_output("display_data", data=data, metadata=md)
        if kind == "execute_result":
            new = nbformat.v4.new_output(
                "execute_result", data=data, metadata=md, execution_count=None
            )
        return new
    if kind == "error":
        tb = out.get("traceback") if isinstance(out.get("traceback"), list) else []
        return nbformat.v4.new_output(
            "error",
            ename=str(out.get("ename", ""))[:200],
            evalue=str(out.get("evalue", ""))[:2000],
            traceback=[str(x) for x in tb][:200],
        )
    return None


def _shallow(value, limit=20):
    """True for JSON data nested at most `limit` deep (deeper data is dropped from outputs)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
    return True


def executed_notebook(prepared, evaluation):
    """The prepared notebook with the kernel's outputs on the student's and locked cells and the
    evaluator's outputs on the test cells."""
    import copy

    nb = copy.deepcopy(prepared)
    outputs = evaluation.get("outputs") if isinstance(evaluation.get("outputs"), dict) else {}
    verdicts = evaluation.get("verdicts") or {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        md = nbg(cell)
        if md.get("grade") and md.get("grade_id"):
            v = verdicts.get(md["grade_id"])
            outs = (
                v["outputs"]
                if v
                else [
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": "[not run: the notebook stopped before this test]\n",
                    }
                ]
            )
        else:
            outs = outputs.get(str(i)) if isinstance(outputs.get(str(i)), list) else []
        cleaned = [_clean_output(o) for o in outs[:500]]
        cell.outputs = [o for o in cleaned if o is not None]
        cell.execution_count = None
    return nb


def _state_path(state_dir, student, assignment):
    return state_dir / (
        hashlib.sha1(json.dumps([student, assignment]).encode()).hexdigest() + ".json"
    )


def _load_state(state_dir, task):
    path = _state_path(state_dir, task.student, task.assignment)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("key") == task.key else None


def ensure_gradebook(course, scope, sources):
    """Make sure each assignment is in the gradebook with the source's grade cells (else release).

    Several graders may share one database (PostgreSQL): one of them at a time checks and
    (re)releases, under an advisory lock; the check looks in the database itself, never at a file.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy import create_engine, text

    from .release import generate

    course.root.mkdir(parents=True, exist_ok=True)
    engine = create_engine(course.db_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.connect() as lock:
            if postgres:
                lock.execute(text("SELECT pg_advisory_lock(7243101)"))
            try:
                stale = []
                with Gradebook(course.db_url, course_id="bpkit") as gb:
                    for a in scope:
                        try:
                            for name in course.notebooks(a):
                                nb = gb.find_notebook(name, a)
                                have = {(c.name, float(c.max_score)) for c in nb.grade_cells}
                                want = {
                                    (g["grade_id"], g["points"])
                                    for g in graded_cells(sources[(a, name)])
                                }
                                if have != want:
                                    raise MissingEntry()
                        except MissingEntry:
                            stale.append(a)
                for a in stale:
                    generate(course, a)
            finally:
                if postgres:
                    lock.execute(text("SELECT pg_advisory_unlock(7243101)"))
    finally:
        engine.dispose()


def write_gradebook(gb, res, sources):
    """Upsert student, submission and auto scores (idempotent); fills res score/max_score/rows."""
    from nbgrader.api import MissingEntry

    student, a = res["student"], res["assignment"]
    rows, total, max_total, awaiting = [], 0.0, 0.0, 0.0
    # no submission record for rows without a readable notebook (nbgrader export shows 0)
    use_gb = bool(
        NAME_RE.match(student) and res["notebooks"] and res["status"] not in ("invalid", "missing")
    )
    if NAME_RE.match(student) and res["notebooks"]:
        gb.update_or_create_student(student)
    if use_gb:
        gb.update_or_create_submission(a, student)
    for name, nb_res in res["notebooks"].items():
        for g in graded_cells(sources[(a, name)]):
            gid, auto = g["grade_id"], nb_res["grades"].get(g["grade_id"])
            manual = None
            if use_gb:
                try:
                    grade = gb.find_grade(gid, name, a, student)
                    if g["kind"] == "test":
                        grade.auto_score = auto
                        grade.needs_manual_grade = auto is None and grade.manual_score is None
                    else:
                        grade.needs_manual_grade = grade.manual_score is None
                    manual = grade.manual_score
                except MissingEntry:
                    pass
            score = manual if manual is not None else auto
            total += score or 0.0
            max_total += g["points"]
            if g["kind"] == "test":
                by = "hand" if manual is not None else "auto"
            else:
                by = "hand" if manual is not None else "hand: waiting"
                if manual is None:
                    awaiting += g["points"]
            rows.append([student, a, exercise_of(gid), gid, fmt(score), fmt(g["points"]), by])
    if use_gb:
        gb.db.commit()
    res["score"], res["max_score"], res["rows"] = total, max_total, rows
    res["awaiting"] = awaiting


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _field(value):
    """A CSV field with its control characters written as escapes (\\x0a): a student-chosen
    name or grade_id cannot forge rows, and stays recognisable."""
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), str(value))


def write_csvs(outdir, results, sources):
    with open(outdir / "grades.csv.tmp", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            [
                "student",
                "assignment",
                "score",
                "max_score",
                "awaiting_hand_grading",
                "status",
                "reason",
            ]
        )
        for r in results:
            w.writerow(
                _field(x)
                for x in [
                    r["student"],
                    r["assignment"],
                    fmt(r["score"]),
                    fmt(r["max_score"]),
                    fmt(r.get("awaiting", 0)),
                    r["status"],
                    r["reason"],
                ]
            )
    os.replace(outdir / "grades.csv.tmp", outdir / "grades.csv")
    with open(outdir / "exercises.csv.tmp", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["student", "assignment", "exercise", "grade_id", "score", "max_score", "graded_by"]
        )
        for r in results:
            w.writerows([_field(x) for x in row] for row in r["rows"])
    os.replace(outdir / "exercises.csv.tmp", outdir / "exercises.csv")


NOT_ATTEMPTED = ("NotAnswered", "NotImplementedError")


def feedback_html(executed, task, name, nb_res, statuses, reasons, src, verdicts, settings):
    """The feedback page, rendered in a child process with a time and memory limit (a plain page
    with the scores when the notebook cannot be rendered within them)."""
    from .feedback import FeedbackSummary, TestRow, fallback_page, render_feedback_checked

    rows, score, max_score, awaiting = [], 0.0, 0.0, 0.0
    answers = {nbg(c).get("grade_id"): c for c in executed.cells if nbg(c).get("solution")}
    for g in graded_cells(src):
        gid, points = g["grade_id"], g["points"]
        max_score += points
        if g["kind"] == "test":
            v = verdicts.get(gid) or {}
            got = nb_res["grades"].get(gid) or 0.0
            score += got
            if v.get("passed"):
                state, msg = "passed", ""
            else:
                ename, evalue = v.get("ename", ""), (v.get("evalue") or "not run").strip()
                state = "not attempted" if ename in NOT_ATTEMPTED else "failed"
                msg = evalue.splitlines()[-1] if evalue else ename
            rows.append(TestRow(gid, exercise_of(gid), points, got, state, msg[:500]))
        else:
            cell = answers.get(gid)
            text = (cell.source if cell is not None else "").strip()
            empty = not text or text == "YOUR ANSWER HERE"
            awaiting += points
            rows.append(
                TestRow(gid, gid, points, None, "written: empty" if empty else "written: waiting")
            )
    summary = FeedbackSummary(
        student=task.student,
        assignment=task.assignment,
        notebook=name,
        status=min(statuses + ["ok"], key=PRIORITY.index),
        reasons=list(reasons),
        tests=rows,
        score=score,
        max_score=max_score,
        awaiting_hand_points=awaiting,
    )
    html, why = render_feedback_checked(
        json.loads(nbformat.writes(executed)),
        summary,
        timeout_s=settings.feedback_timeout,
        memory_mb=settings.feedback_memory,
    )
    return html if html is not None else fallback_page(summary, why or "")


def grade(course, submissions, outdir, settings, log=sys.stderr):
    return Grader(course, submissions, outdir, settings, log).run()
