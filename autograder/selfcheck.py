"""selfcheck: the notebooks grade themselves correctly.

Per assignment: the source earns full marks in < 15 s; the student version (solutions and hidden
tests stripped by nbgrader, test cells restored as the grader does) earns 0 on every test cell,
each failing with an error; every recorded wrong answer loses points on its exercise's tests.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from . import launch
from .check import mpl_cache
from .nbtools import clean_ename, exercises, graded_cells, nbg, prepare_submission, student_version
from .settings import GraderSettings

SOURCE_LIMIT = 15.0


def _tests(nb):
    return [g for g in graded_cells(nb) if g["kind"] == "test"]


def load_wrong_answers(path, nb):
    """Validated {ex: [{"why", "source"}]} or raise ValueError saying what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError("no wrong answers file %s" % path) from None
    except ValueError as exc:
        raise ValueError("%s is not valid JSON (%s)" % (path, exc)) from None
    if not isinstance(data, dict):
        raise ValueError("%s: expected an object {exercise: [...]}" % path)
    answer_ids = {nbg(c).get("grade_id") for c in nb.cells if nbg(c).get("solution")}
    for ex, items in data.items():
        if ex not in answer_ids:
            raise ValueError("%s: %r is not an answer cell grade_id of the notebook" % (path, ex))
        if not isinstance(items, list) or not all(
            isinstance(i, dict)
            and isinstance(i.get("source"), str)
            and isinstance(i.get("why"), str)
            for i in items
        ):
            raise ValueError('%s: %r must be a list of {"why": str, "source": str}' % (path, ex))
    return data


def plan(course, assignments, wrong_dir=None):
    """Runs to do and immediate failure rows.

    Per notebook two runs: the student version, and the source with every wrong answer as a
    variant (the kernel state before the answer cell is snapshotted and restored for each
    variant, so the notebook's set-up runs once, not once per wrong answer).
    run = (assignment, name, notebook, variants, checks) with checks = [(check, detail, kind, tests, tag)]
    """
    runs, rows = [], []
    for a in assignments:
        for name in course.notebooks(a):
            src = nbformat.read(course.source_path(a, name), as_version=4)
            tests = _tests(src)
            student, _ = prepare_submission(student_version(src, course.config), src)
            runs.append((a, name, student, None, [("student", name, "student", tests, None)]))
            checks = [("source", name, "source", tests, None)]
            variants = {}
            wpath = Path(wrong_dir or course.wrong_answers_path(a).parent) / (a + ".json")
            try:
                wrong = load_wrong_answers(wpath, src)
            except ValueError as exc:
                rows.append((a, "wrong answers", "FAIL", str(exc)))
                wrong = {}
            ex_tests = exercises(src)
            for ex in ex_tests:
                if wpath.exists() and ex not in wrong or wrong.get(ex) == []:
                    rows.append(
                        (a, "wrong answers", "FAIL", "no wrong answer recorded for %s" % ex)
                    )
            answer_index = {
                nbg(c).get("grade_id"): i
                for i, c in enumerate(src.cells)
                if nbg(c).get("solution") and c.cell_type == "code"
            }
            for ex, items in wrong.items():
                if ex not in ex_tests or ex not in answer_index:
                    rows.append(
                        (a, "wrong:%s" % ex, "FAIL", "exercise has no autograded test cells")
                    )
                    continue
                own = [g for g in tests if g["grade_id"] in ex_tests[ex]]
                last = max(g["index"] for g in own)
                for k, item in enumerate(items):
                    tag = "%s#%d" % (ex, k + 1)
                    variants.setdefault(str(answer_index[ex]), []).append(
                        {"tag": tag, "source": item["source"], "upto": last}
                    )
                    checks.append(("wrong:" + tag, item["why"], "wrong", own, tag))
            runs.append((a, name, src, variants, checks))
    return runs, rows


def judge(kind, tests, result, problem, tag=None):
    """(ok, detail) for one check of a run."""
    if result is None:
        return False, "could not run: %s" % problem
    if result.get("error"):
        return False, "runner error: %s" % result["error"]
    if kind == "wrong" and tag not in result.get("variants", {}):
        return False, "not run (the kernel stopped before it)"
    cells = result["variants"][tag] if kind == "wrong" else result["cells"]
    info = {g["grade_id"]: cells.get(str(g["index"]), {}) for g in tests}
    passed = [gid for gid, i in info.items() if i.get("status") == "ok" and not i.get("stderr")]
    if kind == "source":
        secs = result.get("main_elapsed", result["elapsed"])
        bad = [gid for gid in info if gid not in passed]
        if bad:
            i = info[bad[0]]
            why = (
                clean_ename(i)
                if i.get("status") == "error"
                else "wrote to stderr"
                if i.get("stderr")
                else i.get("status")
            )
            return False, "%.1f s; %d/%d tests fail, first %s: %s" % (
                secs,
                len(bad),
                len(info),
                bad[0],
                why,
            )
        if secs > SOURCE_LIMIT:
            return False, "%.1f s (over the %.0f s limit)" % (secs, SOURCE_LIMIT)
        return True, "%.1f s, %d tests pass" % (secs, len(info))
    if kind == "student":
        if result.get("kernel_died") is not None:
            return False, "kernel died"
        bad = [gid for gid, i in info.items() if i.get("status") != "error"]
        if bad:
            return False, "tests not failing with an error: %s" % ", ".join(
                "%s (%s)" % (gid, info[gid].get("status")) for gid in bad
            )
        return True, "%d tests fail with a message, score 0" % len(info)
    # wrong answer
    if passed and len(passed) == len(info):
        return False, "earns full marks on %s" % ", ".join(info)
    failing = [gid for gid in info if gid not in passed]
    return True, "loses %s" % ", ".join(failing)


def _passed(cells, tests):
    """{grade_id: passed} for the tests present in a run's cell infos."""
    return {
        g["grade_id"]: cells[str(g["index"])].get("status") == "ok"
        and not cells[str(g["index"])].get("stderr")
        for g in tests
        if str(g["index"]) in cells
    }


def _shows(cells, tests, text):
    """True when a failing test among `tests` says `text` (in its error message)."""
    return any(
        text in (cells.get(str(g["index"]), {}).get("evalue") or "")
        for g in tests
        if cells.get(str(g["index"]), {}).get("status") == "error"
    )


def evaluator_rows(course, assignments, runs, kernel_verdicts, jobs, mpl, first_only=False):
    """The grader's evaluator (verdicts outside the student's kernel) must agree with running the
    tests in the kernel (nbgrader's way) on the source, the student version and every wrong answer."""
    from .worker import WorkerPool

    settings = GraderSettings(cell_timeout=60, timeout=300, memory=8192, sandbox=False)
    jobs_todo = []
    for a, name, nb, variants, checks in runs:
        src = nbformat.read(course.source_path(a, name), as_version=4)
        for check, _, kind, tests, tag in checks:
            if kind in ("source", "student"):
                sub, key = nb, (a, name, kind)
            elif first_only and not tag.endswith("#1"):
                continue
            else:
                sub, key = nbformat.from_dict(json.loads(json.dumps(nb))), (a, name, tag)
                idx = next(int(i) for i, vs in variants.items() if any(v["tag"] == tag for v in vs))
                sub.cells[idx].source = next(
                    v["source"] for v in variants[str(idx)] if v["tag"] == tag
                )
            if key in kernel_verdicts:
                last = tests[-1]["grade_id"] if kind == "wrong" and tests else None
                jobs_todo.append((a, check, src, sub, kernel_verdicts[key], last))
    pool = WorkerPool()

    def one(item):
        a, check, src, sub, want, last = item
        job = {
            "source": src,
            "prepared": sub,
            "settings": settings.trait_values_for_job(),
            "sandbox": False,
            "mpl": str(mpl),
            "last_test": last,
        }
        got = pool.evaluate(job, timeout=400).get("verdicts") or {}
        diff = [gid for gid, ok in want.items() if bool((got.get(gid) or {}).get("passed")) != ok]
        return a, check, diff, got

    rows = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            for a, check, diff, got in ex.map(one, jobs_todo):
                row = rows.setdefault(a, [0, []])
                row[0] += 1
                for gid in diff:
                    v = got.get(gid) or {}
                    row[1].append(
                        "%s %s (evaluator: %s)"
                        % (check, gid, (v.get("evalue") or "passed" if v else "no verdict")[:120])
                    )
    finally:
        pool.close()
    return [
        (
            a,
            "evaluator",
            "FAIL" if bad else "ok",
            ("%d runs; differs on %s" % (n, "; ".join(bad[:3])))
            if bad
            else "%d runs agree with the kernel" % n,
        )
        for a, (n, bad) in sorted(rows.items())
    ]


def selfcheck(course, names, out, jobs=1, wrong_dir=None, evaluator="all"):
    assignments = course.check_assignments(names)
    runs, rows = plan(course, assignments, wrong_dir)
    mpl = mpl_cache()

    def work(run):
        a, name, nb, variants, checks = run
        n = sum(len(v) for v in (variants or {}).values())
        settings = GraderSettings(cell_timeout=60, timeout=300 + 30 * n, memory=8192)
        result = launch.run_trusted(nb, settings, mpl=mpl, variants=variants)
        problem = result.get("error")
        found = []
        for check, detail, kind, tests, tag in checks:
            ok, msg = judge(kind, tests, result, problem, tag)
            if kind == "wrong":
                msg = "%s: %s" % (detail, msg)
                want = wanted_messages.get((a, tag))
                if ok and want and not _shows(result["variants"].get(tag, {}), tests, want):
                    ok, msg = False, "%s: the failing check does not say %r" % (detail, want)
            found.append((a, check, "ok" if ok else "FAIL", msg))
            if kind in ("source", "student"):
                kernel_verdicts[(a, name, kind)] = _passed(result["cells"], tests)
            elif tag in result.get("variants", {}):
                kernel_verdicts[(a, name, tag)] = _passed(result["variants"][tag], tests)
        return found

    wanted_messages, kernel_verdicts = {}, {}
    for a in assignments:
        wpath = Path(wrong_dir or course.wrong_answers_path(a).parent) / (a + ".json")
        try:
            data = json.loads(wpath.read_text())
        except (OSError, ValueError):
            continue
        for ex, items in data.items() if isinstance(data, dict) else ():
            for k, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict) and isinstance(item.get("message"), str):
                    wanted_messages[(a, "%s#%d" % (ex, k + 1))] = item["message"]
    # longest runs first keeps both workers busy
    runs.sort(key=lambda r: -sum(len(v) for v in (r[3] or {}).values()))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for found in pool.map(work, runs):
            rows += found
    if evaluator != "none":
        rows += evaluator_rows(
            course, assignments, runs, kernel_verdicts, jobs, mpl, first_only=evaluator == "first"
        )
    rows.sort(key=lambda r: (r[0], {"source": 0, "student": 1}.get(r[1], 2), r[1]))
    widths = [
        max(len(str(r[i])) for r in rows + [("assignment", "check", "result", "")])
        for i in range(3)
    ]
    out.write(
        "%-*s  %-*s  %-*s  %s\n"
        % (widths[0], "assignment", widths[1], "check", widths[2], "result", "detail")
    )
    for r in rows:
        out.write(
            "%-*s  %-*s  %-*s  %s\n" % (widths[0], r[0], widths[1], r[1], widths[2], r[2], r[3])
        )
    fails = sum(1 for r in rows if r[2] != "ok")
    out.write("selfcheck: %d checks, %d failed\n" % (len(rows), fails))
    return 1 if fails else 0
