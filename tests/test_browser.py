"""The student's and the instructor's paths in a real browser: JupyterLab in Debian's chromium,
driven by Playwright.

Student: `python3 tasks.py lab` on a temporary workspace (one server for the module). The
workspace is seeded with the student versions of every notebook but 05 (built in-process: a full
nbgrader release of ten assignments takes about a minute), so tasks.py releases 05 through
nbgrader as on a first start. Tests: the lab opens its start page and shows no instructor or
exchange UI; Run All on the untouched 05 goes top to bottom with a one-line "not answered yet"
at each exercise; locked cells cannot be edited or deleted; a newcomer fills 05 in exercise by
exercise (the source notebook's solutions) and every check passes, then `autograder check`
agrees.

Instructor: `python3 tasks.py formgrader` on the same course: a written answer graded by hand in
formgrader's UI shows in `nbgrader export`.

Skipped only when chromium is missing outside CI; with CI=true it must run. Screenshots go to
artifacts/browser/.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from adversarial.fixture import strip_markers
from adversarial.harness import PYTHON, REPO, VENV_BIN, grader_env
from conftest import CHROMIUM, CHROMIUM_ARGS

from autograder.nbtools import student_version

TARGET = "05_worked_example"
SOURCE_NB = REPO / "notebooks" / TARGET / f"{TARGET}.ipynb"
REL = f"{TARGET}/{TARGET}.ipynb"
ARTIFACTS = REPO / "artifacts" / "browser"
IN_CI = os.environ.get("CI") == "true"
TEST_SUFFIX = re.compile(r"_test\d*$")


def _require_chromium():
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "python package playwright not installed"
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)


def _md(cell):
    md = cell.get("metadata", {}).get("nbgrader", {})
    return md if isinstance(md, dict) else {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_info(env, port, deadline, proc):
    """The entry of `jupyter server list --json` for our port (it holds the server's own pid)."""
    while time.monotonic() < deadline and proc.poll() is None:
        out = subprocess.run(
            [str(VENV_BIN / "jupyter"), "server", "list", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        for line in out.splitlines():
            try:
                info = json.loads(line)
            except ValueError:
                continue
            if info.get("port") == port:
                return info
        time.sleep(0.5)
    return None


def _stop(pid: int, timeout: float = 20):
    """SIGTERM (the server shuts its kernels down), SIGKILL if still alive after timeout."""
    import psutil

    try:
        server = psutil.Process(pid)
        server.terminate()
        server.wait(timeout)
    except psutil.TimeoutExpired:
        server.kill()
        server.wait(5)
    except psutil.NoSuchProcess:
        pass


class Server:
    """`python3 tasks.py COMMAND` started on a free port; stopped by its own pid."""

    def __init__(self, command, args, env, log):
        self.port = _free_port()
        extra = ["--ServerApp.ip=127.0.0.1", "--LabApp.expose_app_in_browser=True"]
        cmd = [PYTHON, "tasks.py", command, *args, "--port", str(self.port), "--no-browser"]
        self.log = log
        self.env = env
        self.proc = subprocess.Popen(
            [*cmd, "--", *extra],
            cwd=REPO,
            env=env,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        t0 = time.monotonic()
        self.info = _server_info(env, self.port, time.monotonic() + 150, self.proc)
        print(f"tasks.py {command}: server up in {time.monotonic() - t0:.1f} s")
        if not self.info:
            self.stop()
            pytest.fail(f"tasks.py {command} did not start:\n{Path(log).read_text()[-3000:]}")
        self.url, self.token = self.info["url"], self.info.get("token", "")

    def stop(self):
        if getattr(self, "info", None):
            _stop(self.info["pid"])
        if self.proc.poll() is None:
            _stop(self.proc.pid)
        self.proc.wait(timeout=10)


def _env(tmp):
    env = grader_env()
    env.update(
        BPKIT_COURSE_DIR=str(tmp / "course"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab-workspaces"),
    )
    env.pop("JUPYTER_CONFIG_PATH", None)
    return env


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    _require_chromium()
    assert SOURCE_NB.exists(), SOURCE_NB
    tmp = tmp_path_factory.mktemp("student_lab")
    workspace = tmp / "workspace"
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
        if path.stem != path.parent.name or path == SOURCE_NB:
            continue
        dst = workspace / path.parent.name / path.name
        dst.parent.mkdir(parents=True)
        nbformat.write(student_version(nbformat.read(path, as_version=4)), dst)
    env = _env(tmp)
    server = Server("lab", ["--workspace", str(workspace)], env, tmp / "lab.log")
    server.workspace, server.tmp = workspace, tmp
    assert (workspace / REL).is_file(), "tasks.py lab did not release 05 into the workspace"
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield p
    p.close()


JS_CELLS = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  return nb.widgets.map((c, i) => ({
    i, type: c.model.type, gid: ((c.model.getMetadata('nbgrader') || {}).grade_id) || null,
    source: c.model.sharedModel.getSource(),
    count: c.model.type === 'code' ? c.model.executionCount : null,
    outputs: c.model.type === 'code' ? c.model.outputs.toJSON() : []}));
}"""
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _cells(page):
    """The open notebook's cells, each with `shown`: the text its outputs display (JupyterLab
    shows an error as its traceback lines; it renders only the cells in view, so the DOM cannot
    be read for all of them)."""
    cells = page.evaluate(JS_CELLS)
    for c in cells:
        parts = []
        for o in c["outputs"]:
            kind = o["output_type"]
            if kind == "stream":
                parts.append("".join(o["text"]) if isinstance(o["text"], list) else o["text"])
            elif kind == "error":
                parts.append("\n".join(o.get("traceback") or []))
            elif "text/plain" in o.get("data", {}):
                text = o["data"]["text/plain"]
                parts.append("".join(text) if isinstance(text, list) else text)
        c["shown"] = ANSI.sub("", "\n".join(parts))
    return cells


def _open_notebook(page, lab, rel=REL):
    page.goto(f"{lab.url}lab/tree/{rel}?token={lab.token}", timeout=60_000)
    page.wait_for_function(
        """(rel) => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
        return w && w.context && w.context.path === rel && w.context.isReady && w.sessionContext
               && w.sessionContext.session && w.sessionContext.session.kernel
               && w.sessionContext.session.kernel.status === 'idle'; }""",
        arg=rel,
        timeout=90_000,
    )
    page.wait_for_timeout(500)


def _wait_idle(page, timeout=90):
    page.wait_for_timeout(300)
    page.wait_for_function(
        """() => {
      const w = window.jupyterapp.shell.currentWidget;
      const k = w.sessionContext.session && w.sessionContext.session.kernel;
      const busy = w.content.widgets.some(c => c.model.type === 'code'
                                          && c.model.executionState === 'running');
      return k && k.status === 'idle' && !busy;
    }""",
        timeout=timeout * 1000,
        polling=200,
    )


def _restart_clean(page):
    """Fresh kernel, no outputs: the notebook as a student opens it the next day."""
    page.evaluate(
        """async () => { const w = window.jupyterapp.shell.currentWidget;
        await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        await w.sessionContext.session.kernel.restart(); }"""
    )
    _wait_idle(page)


def _run_cell(page, i):
    page.evaluate(
        """async (i) => { const app = window.jupyterapp; const nb = app.shell.currentWidget.content;
        nb.deselectAll(); nb.activeCellIndex = i; nb.mode = 'command';
        await app.commands.execute('notebook:run-cell'); }""",
        i,
    )


def _exercise_tests(nb):
    """{exercise: [test cell grade_ids]} in order (code grade cells)."""
    out = {}
    for c in nb.cells:
        if c.cell_type == "code" and _md(c).get("grade") and _md(c).get("grade_id"):
            out.setdefault(TEST_SUFFIX.sub("", _md(c)["grade_id"]), []).append(_md(c)["grade_id"])
    return out


# ------------------------------------------------------------------------------ student


def test_student_lab_opens_start_page_without_instructor_ui(student_lab, page):
    lab = student_lab
    page.goto(f"{lab.url}?token={lab.token}", timeout=60_000)
    page.wait_for_function(
        """() => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
        return w && w.node.querySelector('.jp-RenderedMarkdown h2'); }""",
        timeout=60_000,
    )
    page.wait_for_timeout(1500)  # let every plugin finish starting (and fail, if it would)
    page.screenshot(path=str(ARTIFACTS / "start_page.png"))
    got = page.evaluate(
        """() => { const app = window.jupyterapp; const w = app.shell.currentWidget;
        return {title: w.title.label, text: w.node.innerText,
                links: [...w.node.querySelectorAll('a')].map(a => a.getAttribute('href')),
                menus: [...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(m => m.innerText),
                commands: app.commands.listCommands().filter(c => /nbgrader/i.test(c)),
                body: document.body.innerText}; }"""
    )
    assert got["title"] == "START.md" and "/lab/tree/START.md" in page.url, (got["title"], page.url)
    assert "How to check your work" in got["text"] and "Run All" in got["text"]
    assert "python -m autograder check" in got["text"] and "Validate" in got["text"]
    series = sorted(
        p.stem for p in lab.workspace.glob("[0-9][0-9]_*/*.ipynb") if p.stem == p.parent.name
    )
    wanted = sorted(
        p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*/*.ipynb") if p.stem == p.parent.name
    )
    assert series == wanted
    for name in series:
        assert any(f"/{name}/{name}.ipynb" in (link or "") for link in got["links"]), name
    assert "Nbgrader" not in got["menus"], got["menus"]
    instructor = [c for c in got["commands"] if "validate" not in c]
    assert instructor == [], f"instructor/exchange commands in the student lab: {instructor}"
    for text in ("Create Assignment", "Formgrader", "exchange directory", "Error fetching"):
        assert text not in got["body"], f"{text!r} shown in the student lab"
    for route in ("formgrader", "assignments", "courses"):
        status = page.request.get(f"{lab.url}{route}?token={lab.token}").status
        assert status == 404, f"/{route} answers {status} in the student lab"
    log = Path(lab.log).read_text().lower()
    assert "exchange directory" not in log and "error fetching" not in log


def test_run_all_on_untouched_05_reaches_the_end_one_line_each(student_lab, page):
    _open_notebook(page, student_lab)
    dirty = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
    assert dirty is False, "the untouched notebook is marked unsaved on open"
    t0 = time.monotonic()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    try:  # neither the command's promise nor an idle kernel means the last cell has run
        page.wait_for_function(
            """() => window.jupyterapp.shell.currentWidget.content.widgets.every(
                c => c.model.type !== 'code' || !c.model.sharedModel.getSource().trim()
                     || c.model.executionCount !== null)""",
            timeout=120_000,
            polling=250,
        )
    except Exception:
        pass  # the assertion below names the cells that never ran
    _wait_idle(page, timeout=60)
    print(f"Run All in {time.monotonic() - t0:.1f} s")
    cells = _cells(page)
    not_run = [
        c["i"] for c in cells if c["type"] == "code" and c["source"].strip() and not c["count"]
    ]
    assert not not_run, f"Run All stopped: cells {not_run} never ran"
    source = nbformat.read(SOURCE_NB, as_version=4)
    by_gid = {c["gid"]: c for c in cells if c["gid"]}
    for tests in _exercise_tests(source).values():
        first = by_gid[tests[0]]
        shown = [ln for ln in first["shown"].splitlines() if ln.strip()]
        assert len(shown) == 1 and "not answered yet" in shown[0], (
            f"{tests[0]} of the untouched notebook shows:\n{first['shown']}"
        )
    everything = "\n".join(c["shown"] for c in cells)
    for word in ("Traceback", "most recent call last", "checks.py", "site-packages"):
        assert word not in everything, f"{word!r} shown after Run All"
    index = by_gid[next(iter(_exercise_tests(source).values()))[0]]["i"]
    page.evaluate(
        "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.scrollIntoView()",
        index,
    )
    page.screenshot(path=str(ARTIFACTS / "run_all.png"))


def test_locked_cells_cannot_be_edited_or_deleted(student_lab, page):
    _open_notebook(page, student_lab)
    cells = _cells(page)
    locked = [c for c in cells if c["gid"] and (c["gid"].endswith("_test") or c["i"] == 0)]
    assert len(locked) >= 2
    for cell in locked[:3]:
        before = cell["source"]
        page.evaluate(
            """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
            nb.deselectAll(); nb.activeCellIndex = i; nb.mode = 'command';
            nb.widgets[i].node.scrollIntoView(); }""",
            cell["i"],
        )
        page.keyboard.press("Enter")  # edit mode, as a student would
        page.keyboard.type("zzz")
        page.keyboard.press("Escape")
        page.evaluate(
            """async (i) => { const app = window.jupyterapp;
            const nb = app.shell.currentWidget.content; nb.deselectAll(); nb.activeCellIndex = i;
            await app.commands.execute('notebook:delete-cell'); }""",
            cell["i"],
        )
        now = _cells(page)
        assert len(now) == len(cells), f"locked cell {cell['gid']} could be deleted"
        assert now[cell["i"]]["source"] == before, f"locked cell {cell['gid']} could be edited"
    page.screenshot(path=str(ARTIFACTS / "locked.png"))


def test_newcomer_completes_05_exercise_by_exercise(student_lab, page):
    lab = student_lab
    _open_notebook(page, lab)
    _restart_clean(page)
    source = nbformat.read(SOURCE_NB, as_version=4)
    answers = {
        _md(c)["grade_id"]: strip_markers(c.source)
        for c in source.cells
        if _md(c).get("solution") and _md(c).get("grade_id")
    }
    cells = _cells(page)
    starts = [c["i"] for c in cells if c["gid"] in answers]
    t0 = time.monotonic()
    for i in range(starts[0]):  # the set-up above the first exercise
        _run_cell(page, i)
    for k, start in enumerate(starts):
        gid = cells[start]["gid"]
        page.evaluate(
            """([i, src]) => window.jupyterapp.shell.currentWidget.content.widgets[i]
                  .model.sharedModel.setSource(src)""",
            [start, answers[gid]],
        )
        end = starts[k + 1] if k + 1 < len(starts) else len(cells)
        for i in range(start, end):
            _run_cell(page, i)
        now = _cells(page)
        for c in now[start:end]:
            if c["gid"] and TEST_SUFFIX.search(c["gid"]):
                errors = [o for o in c["outputs"] if o["output_type"] == "error"]
                assert not errors, f"{c['gid']} fails with the solution of {gid}:\n{c['shown']}"
                assert c["count"], f"{c['gid']} did not run"
    print(f"filled in and checked {len(starts)} answers in {time.monotonic() - t0:.1f} s")
    cells = _cells(page)
    for ex, tests in _exercise_tests(source).items():
        shown = next(c["shown"] for c in cells if c["gid"] == tests[0])
        assert "passed" in shown, f"{ex}: no success line:\n{shown}"
    page.screenshot(path=str(ARTIFACTS / "newcomer.png"))
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=20_000
    )
    proc = subprocess.run(
        [PYTHON, "-m", "autograder", "check", str(lab.workspace / REL)],
        capture_output=True,
        text=True,
        env=lab.env,
        cwd=REPO,
        timeout=180,
    )
    n = len(_exercise_tests(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{n} passed, 0 failed, 0 not attempted" in proc.stdout, proc.stdout
    assert "written answer: empty" not in proc.stdout, proc.stdout
    written = sum(1 for c in source.cells if c.cell_type == "markdown" and _md(c).get("grade"))
    assert proc.stdout.count("written answer: waiting for the instructor") == written, proc.stdout
    assert len(re.findall(r"\d pts?\s+passed$", proc.stdout, re.M)) == n, proc.stdout


# ---------------------------------------------------------------------------- instructor


def test_formgrader_grade_written_answer_then_export(student_lab, page, tmp_path):
    """Release (done by the student lab above: 05 is in this course's gradebook), a
    submission, plain `nbgrader autograde`, a written answer graded in formgrader's UI,
    `nbgrader export`: the hand-given points are in the export."""
    lab = student_lab
    env = dict(lab.env)
    course = Path(env["BPKIT_COURSE_DIR"])
    sub = course / "submitted" / "alice" / TARGET
    sub.mkdir(parents=True, exist_ok=True)
    shutil.copy(SOURCE_NB, sub / f"{TARGET}.ipynb")
    source = nbformat.read(SOURCE_NB, as_version=4)
    written = [
        (_md(c)["grade_id"], _md(c)["points"])
        for c in source.cells
        if c.cell_type == "markdown" and _md(c).get("grade")
    ]
    auto_points = sum(
        _md(c).get("points", 0)
        for c in source.cells
        if c.cell_type == "code" and _md(c).get("grade")
    )
    assert written, "05 has no written answer to grade"
    ag = REPO / "autograder"
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(VENV_BIN / "nbgrader"), "autograde", TARGET, "--student", "alice"],
        cwd=ag,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    print(f"nbgrader autograde in {time.monotonic() - t0:.1f} s")

    server = Server("formgrader", [], env, tmp_path / "formgrader.log")
    try:
        fg = f"{server.url}formgrader"
        page.goto(f"{fg}?token={server.token}", timeout=60_000)  # what tasks.py opens
        page.wait_for_selector("text=Manage Assignments", timeout=60_000)
        page.goto(f"{fg}/gradebook/{TARGET}/{TARGET}", timeout=60_000)
        page.wait_for_selector("a[href*='/formgrader/submissions/']", timeout=60_000)
        assert "not a subdirectory" not in page.inner_text("body")
        with page.expect_response(lambda r: "/formgrader/api/grades" in r.url, timeout=60_000):
            page.click("a[href*='/formgrader/submissions/']")  # the form works once they load
        gid, points = written[0]
        box = page.locator(f"input.score#{gid}")
        box.wait_for(timeout=60_000)
        given = points - 1 if points > 1 else points
        with page.expect_response(
            lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT",
            timeout=20_000,
        ) as saved:
            box.fill(str(given))
            box.press("Tab")  # formgrader saves on change
        assert saved.value.ok, saved.value.status
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "formgrader.png"))
    finally:
        server.stop()
    out = tmp_path / "grades.csv"
    proc = subprocess.run(
        [str(VENV_BIN / "nbgrader"), "export", "--to", str(out)],
        cwd=ag,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [r for r in csv.DictReader(out.open()) if r["student_id"] == "alice"]
    assert len(rows) == 1, rows
    assert float(rows[0]["raw_score"]) == pytest.approx(auto_points + given), rows[0]
