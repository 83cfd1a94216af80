"""Status and points of one graded notebook: a pure function of what the evaluation found.

The rules (first matching status wins; `reasons` lists every finding), as in the README table:

    invalid       the notebook or its folder could not be read as a submission
    missing       the expected notebook is absent
    error         the grader itself failed (the sandbox could not start): never the student's doing
    flagged       the sandbox broke the protocol (answered out of turn, stopped mid-conversation)
    memory        the sandbox ran out of memory (cgroup OOM kill) or a MemoryError was raised
    kernel_died   the kernel died or was killed; tests after that score 0
    timeout       a cell or a call into student code ran over its time, or the whole submission
    output_limit  an output over the size limits was cut
    ok            otherwise

A test cell scores its points iff the evaluator's verdict for it is "passed" (no exception, no
stderr). Nothing the student's process reports can pass a test: verdicts come from the evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRIORITY = [
    "invalid",
    "missing",
    "error",
    "flagged",
    "memory",
    "kernel_died",
    "timeout",
    "output_limit",
    "ok",
]


@dataclass
class Scored:
    statuses: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    grades: dict = field(default_factory=dict)  # grade_id -> points earned (tests)


def worst(statuses):
    return min(list(statuses) + ["ok"], key=PRIORITY.index)


def score_notebook(tests, evaluation, labels, limits):
    """tests: [(grade_id, points)] of the source; evaluation: worker.evaluate's dict (or
    {"killed": True}); labels: {cell index: grade_id or '#n'}; limits: {"cell_timeout",
    "timeout", "memory"}. Returns Scored."""
    out = Scored()
    verdicts = evaluation.get("verdicts") if isinstance(evaluation.get("verdicts"), dict) else {}
    for gid, points in tests:
        v = verdicts.get(gid)
        out.grades[gid] = float(points) if isinstance(v, dict) and v.get("passed") is True else 0.0

    def label(i):
        return labels.get(i, "#%d" % (i + 1)) if isinstance(i, int) and i >= 0 else "?"

    if evaluation.get("killed"):
        out.statuses.append("timeout")
        out.reasons.append("submission ran over the %g s limit and was stopped" % limits["timeout"])
        return out
    if evaluation.get("error") and not evaluation.get("ready"):
        out.statuses.append("error")
        out.reasons.append("grader error: %s" % evaluation["error"])
        return out
    if evaluation.get("error"):  # after the student's code started: the submission's doing
        out.statuses.append("kernel_died")
        out.reasons.append(
            "the sandbox failed while running the notebook (%s)" % evaluation["error"]
        )
    if evaluation.get("protocol"):
        out.statuses.append("flagged")
        out.reasons.append("integrity: %s" % evaluation["protocol"])
    cells = evaluation.get("cells") if isinstance(evaluation.get("cells"), dict) else {}
    infos = [(int(i), c) for i, c in cells.items() if str(i).isdigit() and isinstance(c, dict)]
    memory_errors = [i for i, c in infos if c.get("ename") == "MemoryError"]
    memory_errors += [
        g for g, v in verdicts.items() if isinstance(v, dict) and v.get("ename") == "MemoryError"
    ]
    if evaluation.get("memory") or memory_errors:
        out.statuses.append("memory")
        out.reasons.append("out of memory (limit %d MB for the whole sandbox)" % limits["memory"])
    died = evaluation.get("kernel_died")
    if died is not None:
        out.statuses.append("kernel_died")
        where = (
            "in cell %s" % label(died)
            if isinstance(died, int) and died >= 0
            else "while a test asked it for an answer"
        )
        out.reasons.append("kernel died %s (later tests score 0)" % where)
    for i, c in sorted(infos, key=lambda x: x[0]):
        if c.get("status") == "timeout":
            out.statuses.append("timeout")
            out.reasons.append(
                "cell %s ran over %g s (interrupted)" % (label(i), limits["cell_timeout"])
            )
    timed_calls = [
        g
        for g, v in verdicts.items()
        if isinstance(v, dict) and str(v.get("evalue", "")).startswith("Timeout")
    ]
    for g in timed_calls:
        out.statuses.append("timeout")
        out.reasons.append(
            "the student's code called by %s ran over %g s" % (g, limits["cell_timeout"])
        )
    if evaluation.get("stuck") is not None:
        out.reasons.append(
            "cell %s ignored the interrupt: kernel stopped, later cells not run"
            % label(evaluation["stuck"])
        )
    if evaluation.get("deadline"):
        out.statuses.append("timeout")
        out.reasons.append("submission ran over %g s: the rest was not run" % limits["timeout"])
    cut = [i for i, c in sorted(infos, key=lambda x: x[0]) if c.get("truncated")]
    if cut:
        out.statuses.append("output_limit")
        out.reasons.append(
            "output over the size limit removed in cell %s" % ", ".join(label(i) for i in cut)
        )
    return out
