"""report: what a graded notebook leaves behind: the executed notebook, the feedback page, the
gradebook rows and the two CSV files. Main-thread writers except feedback_html (thread-safe)."""

import csv
import json
import os
import re
import threading
from pathlib import Path

import nbformat

from .config import NAME_RE
from .nbtools import exercise_of, fmt, graded_cells, nbg
from .score import PRIORITY


def atomic_write(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".%s.tmp%d" % (path.name, threading.get_ident()))
    with open(tmp, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
