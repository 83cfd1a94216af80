"""check: a student runs their own notebook and sees, per exercise, passed / failed / not attempted."""

import os
import tempfile
from pathlib import Path

from . import execute
from .config import UserError
from .nbtools import clean_ename, exercise_of, graded_cells, read_notebook_text

NOT_ANSWERED = ("NotAnswered", "NotImplementedError")


def cell_verdict(info):
    """('passed'|'failed'|'not attempted', message) for one executed test cell's runner info."""
    status = info.get("status")
    if status == "ok" and not info.get("stderr"):
        return "passed", ""
    if status == "ok":
        return "failed", "the test wrote to stderr (a warning?)"
    if status == "error" and info.get("ename") in NOT_ANSWERED:
        return "not attempted", clean_ename(info)
    if status == "error":
        return "failed", clean_ename(info)
    if status == "timeout":
        return "failed", "ran over the time limit"
    return "failed", "not run (the kernel stopped before this test)"


def verdicts(nb, result):
    """{exercise: (verdict, message)} in notebook order, from a runner result."""
    per_ex = {}
    for g in graded_cells(nb):
        if g["kind"] != "test":
            continue
        v = cell_verdict(result["cells"].get(str(g["index"]), {}))
        per_ex.setdefault(exercise_of(g["grade_id"]), []).append(v)
    out = {}
    for ex, vs in per_ex.items():
        failed = [v for v in vs if v[0] == "failed"]
        skipped = [v for v in vs if v[0] == "not attempted"]
        out[ex] = failed[0] if failed else skipped[0] if skipped else ("passed", "")
    return out


def mpl_cache():
    return execute.prepare_mpl_cache(Path(tempfile.gettempdir()) / ("bpkit-mpl-%d" % os.getuid()))


def check(path, out, cell_timeout=60):
    path = Path(path)
    if not path.is_file():
        raise UserError("notebook %s not found" % path)
    try:
        nb = read_notebook_text(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError("%s is not a readable notebook: %s" % (path, exc)) from None
    if not any(g["kind"] == "test" for g in graded_cells(nb)):
        raise UserError("%s has no autograded test cells (nbgrader grade cells)" % path)
    result, problem = execute.run(
        nb,
        sandbox=False,
        probe=False,
        cell_timeout=cell_timeout,
        timeout=max(600, 4 * cell_timeout),
        memory_mb=8192,
        mpl=mpl_cache(),
        cwd=path.resolve().parent,
    )
    if result is None:
        raise UserError("could not run %s: %s" % (path, problem))
    vs = verdicts(nb, result)
    width = max(len(ex) for ex in vs)
    for ex, (verdict, msg) in vs.items():
        out.write("%-*s  %s%s\n" % (width, ex, verdict, (": " + msg) if msg else ""))
    written = [g["grade_id"] for g in graded_cells(nb) if g["kind"] == "written"]
    for gid in written:
        out.write("%-*s  written answer: graded by the instructor\n" % (width, gid))
    counts = {
        k: sum(1 for v, _ in vs.values() if v == k) for k in ("passed", "failed", "not attempted")
    }
    out.write(
        "%d passed, %d failed, %d not attempted\n"
        % (counts["passed"], counts["failed"], counts["not attempted"])
    )
    return 1 if counts["failed"] else 0
