"""The grader cannot be fooled or broken: one grade run over an adversarial class.

Every case of tests/adversarial/corpus.py (broken files, odd names, links, restructured notebooks,
crashes, endless loops, memory and fork bombs, output floods, network and file-system access,
monkeypatching, calling the reference) is graded in ONE `python -m autograder grade` run with small
limits, next to ordinary submissions that must still be graded right. Expected statuses and scores
come from autograder/README.md's rules applied to the fixture (tests/adversarial/fixture.py).
"""

from __future__ import annotations

import threading
import time
import uuid

import psutil
import pytest
from adversarial import corpus, fixture
from adversarial.harness import (
    REPO,
    AnswerServer,
    exercise_scores,
    file_digest,
    grades_by_key,
    host_ip,
    release,
    run_grader,
    tree_digest,
)

pytestmark = pytest.mark.skipif(
    not (REPO / "autograder" / "__main__.py").exists(),
    reason="autograder CLI (autograder/__main__.py) not written yet",
)

LIMITS = ["--jobs", "2", "--cell-timeout", "5", "--timeout", "30", "--memory", "1024"]
RUN_TIMEOUT = 300  # hard bound; about 170 s on 2 idle cores (the goal: the file under 4 minutes)

# Cases the grader is known not to defend (documented in autograder/README.md "Not defended");
# strict xfail: the day they are defended the marker must go.
KNOWN_GAPS: dict[str, str] = {}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    source, course = root / "source", root / "course"
    source_nb = fixture.write_source(source)
    release_nb = release(course, source, fixture.ASSIGNMENT)
    with AnswerServer(b"-11") as server:
        ctx = corpus.Ctx(
            source_nb=source_nb,
            release_nb=release_nb,
            course=course,
            submissions=root / "submissions",
            out=root / "out",
            port=server.port,
            host_ip=host_ip(),
            token=uuid.uuid4().hex[:12],
        )
        cases = corpus.build_all(ctx)
        before = tree_digest(ctx.submissions)
        source_before = file_digest(source_nb)
        start = time.monotonic()
        peak = {"rss": 0}
        stop = threading.Event()

        def sample():  # the grader process itself (not its sandboxes): its peak memory
            while not stop.is_set():
                for p in psutil.process_iter(["cmdline", "memory_info"]):
                    cmd = p.info["cmdline"] or []
                    if "autograder" in cmd and "grade" in cmd and p.info["memory_info"]:
                        peak["rss"] = max(peak["rss"], p.info["memory_info"].rss)
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            proc = run_grader(
                course,
                source,
                "grade",
                ctx.submissions,
                "--out",
                ctx.out,
                *LIMITS,
                timeout=RUN_TIMEOUT,
            )
        finally:
            stop.set()
            sampler.join()
        elapsed = time.monotonic() - start
        connections = server.connections
    leftovers = [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "bpkadvfork"]
    yield dict(
        ctx=ctx,
        cases=cases,
        proc=proc,
        elapsed=elapsed,
        before=before,
        source_before=source_before,
        connections=connections,
        leftovers=leftovers,
        grader_peak=peak["rss"],
    )
    for marker in ctx.outside_markers():  # never leave an attack's file behind
        if marker.is_file():
            marker.unlink()


def _diagnose(batch):
    return f"exit {batch['proc'].returncode}; stderr tail:\n{batch['proc'].stderr[-4000:]}"


def test_batch_completes_with_every_row(batch):
    assert batch["proc"].returncode == 0, _diagnose(batch)
    grades = grades_by_key(batch["ctx"].out)
    expected = {(c.student, fixture.ASSIGNMENT) for c in batch["cases"].values()}
    expected |= {(c.student, asg) for c in batch["cases"].values() for asg in c.rows}
    assert set(grades) == expected, (
        f"missing rows {sorted(expected - set(grades))}, "
        f"unexpected rows {sorted(set(grades) - expected)}"
    )
    print(f"graded {len(grades)} rows in {batch['elapsed']:.1f} s")


def _params():
    for c in corpus.CASES:
        marks = (
            [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[c.student])]
            if c.student in KNOWN_GAPS
            else []
        )
        yield pytest.param(c.student, marks=marks, id=c.student.encode("unicode_escape").decode())


@pytest.mark.parametrize("student", list(_params()))
def test_case_outcome(batch, student):
    case = batch["cases"][student]
    grades = grades_by_key(batch["ctx"].out)
    key = (student, fixture.ASSIGNMENT)
    assert key in grades, f"no grades.csv row for {key!r}; {_diagnose(batch)}"
    row = grades[key]
    got = (row["status"], float(row["score"]))
    allowed = {(s, float(p)) for s, p in case.outcomes}
    assert got in allowed, (
        f"{student!r} ({case.what}): got status/score {got}, expected one of "
        f"{sorted(allowed)}; reason: {row['reason']!r}"
    )
    assert float(row["max_score"]) == fixture.MAX_SCORE, (
        f"max_score {row['max_score']} for {student!r}"
    )
    if row["status"] != "ok":
        assert row["reason"].strip(), f"{student!r}: status {row['status']} without a reason"
    if case.reason:
        assert case.reason in row["reason"].lower(), (
            f"{student!r}: reason {row['reason']!r} should mention {case.reason!r}"
        )
    if case.untouched_tests:
        assert "restored" not in row["reason"].lower(), (
            f"{student!r}: test cells are as released, yet the reason says {row['reason']!r}"
        )
    per_exercise = exercise_scores(batch["ctx"].out).get(key, {})
    for ex in case.zero:
        assert per_exercise.get(ex, 0.0) == 0.0, (
            f"{student!r}: exercise {ex} earned {per_exercise[ex]} (must be 0)"
        )
    for asg, (status, score) in case.rows.items():
        other = grades.get((student, asg))
        assert other and (other["status"], float(other["score"])) == (status, score), (
            f"{student!r}/{asg}: expected {(status, score)}, got {other}"
        )


def test_exercise_scores_add_up(batch):
    """exercises.csv agrees with grades.csv for every graded row."""
    grades = grades_by_key(batch["ctx"].out)
    for key, per in exercise_scores(batch["ctx"].out).items():
        if key in grades and grades[key]["status"] not in ("missing", "invalid"):
            assert abs(sum(per.values()) - float(grades[key]["score"])) < 1e-6, (
                key,
                per,
                grades[key],
            )


def test_submissions_never_modified(batch):
    after = tree_digest(batch["ctx"].submissions)
    changed = sorted(
        k for k in set(batch["before"]) | set(after) if batch["before"].get(k) != after.get(k)
    )
    assert not changed, f"SUBMISSIONS changed: {changed}"


def test_host_untouched(batch):
    ctx = batch["ctx"]
    created = [str(p) for p in ctx.outside_markers() if p.exists()]
    assert not created, f"a submission wrote outside its folder: {created}"
    assert file_digest(ctx.source_nb) == batch["source_before"], "the source notebook was modified"
    assert batch["connections"] == 0, f"{batch['connections']} connections reached the host server"


def test_no_leftover_processes(batch):
    assert not batch["leftovers"], f"fork-bomb children still alive: {batch['leftovers']}"


def test_outputs_bounded_and_feedback_written(batch):
    out = batch["ctx"].out
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert total < 60 * 2**20, (
        f"grader output is {total / 2**20:.0f} MB (output limits not applied?)"
    )
    grades = grades_by_key(out)
    for (student, asg), row in grades.items():
        if row["status"] not in ("missing", "invalid"):
            html = out / "feedback" / student / asg / f"{asg}.html"
            assert html.is_file(), f"no feedback for {student!r}/{asg} ({row['status']})"
            assert html.stat().st_size < 15 * 2**20, (
                f"feedback {html} is {html.stat().st_size} bytes"
            )


def test_grader_memory_and_floods_bounded(batch):
    """Output floods (update_display, comm messages, huge prints) never reach the grader process:
    it stays under 1 GB, and the flooding students' feedback stays under the notebook cap."""
    assert 0 < batch["grader_peak"] < 2**30, (
        f"grader peak RSS {batch['grader_peak'] / 2**20:.0f} MB"
    )
    out = batch["ctx"].out
    for student in ("display_update_flood", "comm_flood", "print_100mb", "giant_html"):
        html = out / "feedback" / student / fixture.ASSIGNMENT / f"{fixture.ASSIGNMENT}.html"
        assert html.is_file() and html.stat().st_size < 12 * 2**20, student


def test_feedback_has_no_student_script(batch):
    out = batch["ctx"].out
    html = (
        out / "feedback" / "script_in_feedback" / fixture.ASSIGNMENT / f"{fixture.ASSIGNMENT}.html"
    ).read_text()
    assert (
        'document.title="pwned"' not in html.replace("&quot;", '"')
        or "<script>document" not in html
    )
    assert "onerror=" not in html


def test_runtime_budget(batch):
    # generous: the machine is shared; on 2 idle cores the batch takes about 170 s
    assert batch["elapsed"] < 240, f"the adversarial batch took {batch['elapsed']:.0f} s"
