"""grade: sandboxed, parallel, resumable grading of a submitted/ tree into CSVs, feedback and the
nbgrader gradebook. See autograder/README.md for the status rules."""

import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

from . import launch
from .config import NAME_RE, UserError
from .discover import EXCHANGE_FILES, discover, read_regular
from .nbtools import (
    fmt,
    graded_cells,
    nbg,
    prepare_submission,
    read_notebook_text,
)
from .report import (
    atomic_write,
    ensure_gradebook,
    executed_notebook,
    feedback_html,
    write_csvs,
    write_gradebook,
)
from .score import PRIORITY, score_notebook
from .worker import WorkerPool

GRADER_VERSION = "2"  # verdicts by the evaluator


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
        return discover(self.subdir, self.known, self.log)

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
                    h.update(read_regular(task.folder / (name + ".ipynb")))
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
            nb_res = _no_grades(src)
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
                sub = read_notebook_text(read_regular(path).decode("utf-8"))
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
                atomic_write(out, html)
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
                "notebooks": {n: _no_grades(self.sources[(task.assignment, n)]) for n in names},
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
                atomic_write(path, nbformat.writes(executed))
                for extra in EXCHANGE_FILES:  # nbgrader's feedback commands look for these
                    try:
                        data = read_regular(
                            self.subdir / res["student"] / res["assignment"] / extra, 1 << 16
                        )
                    except ValueError:
                        continue
                    atomic_write(path.parent / extra, data)
        write_gradebook(gb, res, self.sources)
        atomic_write(_state_path(state_dir, res["student"], res["assignment"]), json.dumps(res))


def _no_grades(src):
    """A notebook's result before (or without) grading: every test 0, written answers unset."""
    return {
        "grades": {
            g["grade_id"]: (0.0 if g["kind"] == "test" else None) for g in graded_cells(src)
        },
        "feedback": None,
    }


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


def grade(course, submissions, outdir, settings, log=sys.stderr):
    return Grader(course, submissions, outdir, settings, log).run()
