"""check: a student runs their own notebook and sees where they stand, exercise by exercise.

Only what is in the student's file runs (the visible checks): no hidden test is used or shown.
Output, one line per exercise then one per written answer, then a summary:

    forward_values   2 pts  passed
    error_E          1 pt   failed: E = 1/2 (y - t)^2: did you forget the 1/2?
    delta_y          2 pts  not attempted
    why_dead         2 pts  written answer: waiting for the instructor
    relu_at_zero     3 pts  written answer: empty

Exit code 1 when an exercise failed or nothing at all was attempted (the output says which),
0 otherwise.
"""

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import launch
from .config import UserError
from .nbtools import exercise_of, fmt, graded_cells, nbg, read_notebook_text
from .settings import GraderSettings

NOT_ANSWERED = ("NotAnswered", "NotImplementedError")
# exceptions whose message is the whole story (the checks' own, and a bare assert's text)
MESSAGE_ONLY = ("CheckFailed", "NotAnswered", "ReferenceUsed", "AssertionError")
ANSWER_STUB = "YOUR ANSWER HERE"  # nbgrader's text_stub for written answers
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_MESSAGE = 240


@dataclass
class Verdict:
    """What check says about one exercise or written answer."""

    name: str
    points: float
    state: str  # passed | failed | not attempted | written: waiting | written: empty
    message: str = ""


def one_line(info, exercise=""):
    """A failure as one short line: the check's own message, else 'ErrorName: message'."""
    ename = info.get("ename") or "Error"
    evalue = ANSI.sub("", info.get("evalue") or "").strip()
    lines = [ln.strip() for ln in evalue.splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    if exercise and text.startswith(exercise + ":"):
        text = text[len(exercise) + 1 :].strip()
    if not text:
        text = ename
    elif ename not in MESSAGE_ONLY:
        text = "%s: %s" % (ename, text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def cell_verdict(info, exercise=""):
    """('passed'|'failed'|'not attempted', message) for one executed test cell's runner info.

    The status is the kernel's execute_reply as the runner reports it: an error reply fails
    the cell even when no error output was shown.
    """
    status = info.get("status")
    if status == "ok" and not info.get("stderr"):
        return "passed", ""
    if status == "ok":
        return "failed", "the check wrote to stderr (a warning?)"
    if status == "error" and info.get("ename") in NOT_ANSWERED:
        return "not attempted", ""
    if status == "error":
        return "failed", one_line(info, exercise)
    if status == "timeout":
        return "failed", "ran over the time limit (an endless loop?)"
    return "failed", "not run (the kernel stopped before this check)"


def has_visible_code(source):
    """A released test cell whose code was all hidden tests holds only blank or comment lines."""
    return any(ln.strip() and not ln.strip().startswith("#") for ln in source.splitlines())


def written_state(source):
    text = source.replace(ANSWER_STUB, "").strip()
    return "written: empty" if not text else "written: waiting"


def verdicts(nb, result):
    """[Verdict] in notebook order: one per exercise (its test cells grouped), one per written
    answer."""
    cells = result["cells"]
    answers = {
        nbg(c).get("grade_id"): i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and nbg(c).get("solution") and not nbg(c).get("grade")
    }
    per_ex, order = {}, []
    for g in graded_cells(nb):
        if g["kind"] == "written":
            state = written_state(nb.cells[g["index"]].source)
            order.append(Verdict(g["grade_id"], g["points"], state))
            continue
        ex = exercise_of(g["grade_id"])
        if ex not in per_ex:
            per_ex[ex] = Verdict(ex, 0.0, "")
            per_ex[ex].found = []
            order.append(per_ex[ex])
        v = per_ex[ex]
        v.points += g["points"]
        if has_visible_code(nb.cells[g["index"]].source):
            v.found.append(cell_verdict(cells.get(str(g["index"]), {}), ex))
    for v in per_ex.values():
        failed = [f for f in v.found if f[0] == "failed"]
        skipped = [f for f in v.found if f[0] == "not attempted"]
        if failed:
            v.state, v.message = failed[0]
            answer = cells.get(str(answers.get(v.name, -1)), {})
            if answer.get("status") == "error" and answer.get("ename") not in NOT_ANSWERED:
                v.message = "your answer cell raised %s" % one_line(answer)
        elif skipped:
            v.state = "not attempted"
        elif v.found:
            v.state = "passed"
        else:  # only hidden tests: nothing to say before grading
            v.state, v.message = "not attempted", "checked by hidden tests only"
        del v.found
    return order


def points_text(points):
    return "%s pt%s" % (fmt(points), "" if points == 1 else "s")


def report(vs, out):
    """Print the verdicts and the summary; returns the exit code."""
    width = max([len(v.name) for v in vs] + [8])
    pwidth = max(len(points_text(v.points)) for v in vs) if vs else 5
    shown = {"written: waiting": "written answer: waiting for the instructor"}
    shown["written: empty"] = "written answer: empty"
    for v in vs:
        text = shown.get(v.state, v.state)
        note = ": " + v.message if v.message else ""
        out.write("%-*s  %-*s  %s%s\n" % (width, v.name, pwidth, points_text(v.points), text, note))
    auto = [v for v in vs if not v.state.startswith("written")]
    written = [v for v in vs if v.state.startswith("written")]
    count = {k: sum(1 for v in auto if v.state == k) for k in ("passed", "failed", "not attempted")}
    out.write(
        "%d passed, %d failed, %d not attempted\n"
        % (count["passed"], count["failed"], count["not attempted"])
    )
    got = sum(v.points for v in auto if v.state == "passed")
    total = sum(v.points for v in auto)
    line = "visible checks pass for %s of %s autograded points" % (fmt(got), fmt(total))
    if written:
        empty = sum(1 for v in written if v.state == "written: empty")
        line += "; written answers: %d of %d written (%s graded by the instructor)" % (
            len(written) - empty,
            len(written),
            points_text(sum(v.points for v in written)),
        )
    out.write(line + "\n")
    out.write("(the instructor's hidden tests may still find mistakes the visible checks miss)\n")
    attempted = count["passed"] + count["failed"] or any(
        v.state == "written: waiting" for v in written
    )
    if not attempted:
        out.write(
            "nothing attempted yet: every answer is still the stub "
            "(is this the notebook you worked in, and did you save it?)\n"
        )
        return 1
    return 1 if count["failed"] else 0


def mpl_cache():
    return launch.prepare_mpl_cache(Path(tempfile.gettempdir()) / ("bpkit-mpl-%d" % os.getuid()))


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
    settings = GraderSettings(
        cell_timeout=cell_timeout, timeout=max(600, 4 * cell_timeout), memory=8192
    )
    result = launch.run_trusted(nb, settings, cwd=path.resolve().parent, mpl=mpl_cache())
    if result.get("error") and not any(
        c.get("status") != "not_run" for c in result["cells"].values()
    ):
        raise UserError("could not run %s: %s" % (path, result["error"]))
    return report(verdicts(nb, result), out)
