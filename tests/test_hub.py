"""The course on JupyterHub, end to end: three Linux users, nbgrader's exchange, a real Chromium.

The test starts everything itself and stops it all at the end, also on failure: JupyterHub from
the venv (the `hub` extra) with deploy/jupyterhub/jupyterhub_config.py, its proxy
configurable-http-proxy from the npm registry (installed once into ~/.cache/bpkit/chp), PAM
log-in of three Linux users that the test creates with random passwords and removes afterwards
(an instructor and two students, alice and bob), one JupyterLab per user started by the hub's
LocalProcessSpawner as that user from the project's venv, the exchange in a temp folder; all on
127.0.0.1 and free ports. Steps (UI = clicked in Chromium with playwright; cmd = run by the test):

1. instructor, UI: logs in; Formgrader (Manage Assignments) "Generate" then "Release" for
   01_chain_rule (nbgrader generate_assignment + release_assignment in the instructor's server).
2. each student, UI: logs in; Nbgrader > Assignment List, "fetch"; opens the notebook from the
   list, answers `betke_blanks` (the source is set through the notebook model, as
   test_browser.py does: typing into CodeMirror auto-indents), saves, "Submit". alice enters
   Betke's gradient (-11, 1, 15) as the source text prints it, bob the sign slip (11, 1, 15).
   A student's server has no Formgrader (deploy/jupyterhub/student/ turns it off).
3. instructor, UI: Formgrader "Collect" (nbgrader collect).
4. grading, cmd as root: deploy/jupyterhub/grade.py, i.e. `python -m autograder grade` on the
   collected submitted/ tree, sandboxed. Root, not the instructor: the sandbox switches each
   submission to a user id of its own, which an unprivileged instructor cannot do (every
   submission would be `error`). Expected: alice earns the points of betke_blanks' test cells,
   bob 0 (both read from the source notebook's nbgrader metadata), status ok.
5. instructor, UI: Formgrader "Generate Feedback", "Release Feedback" (nbgrader
   generate_feedback + release_feedback).
6. alice, UI: Assignment List "Fetch Feedback", "(view feedback)", opens the HTML file: its header
   shows her score out of the notebook's total.

Screenshots of every step go to artifacts/hub/. The step times are printed (pytest -s).
Skipped with the reason where the machine cannot create users (not root, no useradd) or has no
npm; Chromium, playwright or jupyterhub missing is a skip too, except with CI=true (tasks.py
installs them there), where it fails.
"""

from __future__ import annotations

import csv
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from conftest import CHROMIUM_ARGS
from hub_helpers import (
    CHROMIUM,
    REPO,
    VENV_BIN,
    Hub,
    LocalUsers,
    free_port,
    open_path_for_users,
    proxy_command,
    restore_modes,
    run_as,
    why_not,
)

pytestmark = pytest.mark.hub

ASSIGNMENT = "01_chain_rule"
EXERCISE = "betke_blanks"
ANSWERS = {  # Betke's slide: grad P = (-11, 1, 15)^T; bob flips the sign of the first entry
    "alice": "dP_dw1 = -11\ndP_dw2 = 1\ndP_dw3 = 15\n",
    "bob": "dP_dw1 = 11\ndP_dw2 = 1\ndP_dw3 = 15\n",
}
ARTIFACTS = REPO / "artifacts" / "hub"
TIMES: dict[str, float] = {}


def _skip_or_fail(reason: str, machine: bool) -> None:
    if os.environ.get("CI") == "true" and not machine:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


PRINT_BASE = [str(VENV_BIN / "python"), "-c", "import sys; print(sys.base_prefix)"]


def _base_python_home() -> Path:
    """The folder of the Python the venv was made from (pyvenv.cfg `home`)."""
    for line in (VENV_BIN.parent / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip())
    return Path(sys.base_prefix) / "bin"


class Step:
    """Times a step into TIMES and prints it."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t0 = time.monotonic()

    def __exit__(self, *exc):
        TIMES[self.name] = time.monotonic() - self.t0
        print(f"{self.name}: {TIMES[self.name]:.1f} s", flush=True)


@pytest.fixture
def course_hub():
    """Users, proxy, exchange and a running hub; everything removed afterwards."""
    problem = why_not()
    if problem:
        _skip_or_fail(*problem)
    t_start = time.monotonic()
    tag = os.urandom(2).hex()
    names = {"instructor": f"bpk{tag}-instr", "alice": f"bpk{tag}-alice", "bob": f"bpk{tag}-bob"}
    users = hub = None
    opened: list = []
    base = Path(tempfile.mkdtemp(prefix="bpkit-hub-"))
    try:
        with Step("setup: proxy from npm, users, exchange"):
            proxy, npm_seconds = proxy_command()
            print(f"configurable-http-proxy: {proxy} (npm install {npm_seconds:.1f} s)")
            # the users run the venv's python: they must reach it and the Python it was made
            # from (a pyenv Python under a 0700 /root otherwise loads Debian's stdlib instead)
            for path in (VENV_BIN, _base_python_home(), REPO / "deploy"):
                opened += open_path_for_users(path)
            users = LocalUsers()
            for name in names.values():
                users.add(name)
            os.chmod(base, 0o755)
            exchange = base / "exchange"
            exchange.mkdir()
            os.chmod(exchange, 0o1777)  # every user writes here; sticky: nobody removes others'
            state = base / "hub"
            state.mkdir(mode=0o700)
            mine = subprocess.run(PRINT_BASE, capture_output=True, text=True, timeout=60)
            theirs = run_as(names["alice"], PRINT_BASE)
            assert theirs.stdout == mine.stdout, (
                f"a student's python finds another standard library: {theirs.stdout!r} "
                f"{theirs.stderr[-500:]} (root's: {mine.stdout!r})"
            )
        ports = [free_port() for _ in range(3)]
        url = f"http://127.0.0.1:{ports[0]}"
        config = state / "test_hub_config.py"
        config.write_text(
            "c = get_config()  # noqa\n"
            f"load_subconfig({str(REPO / 'deploy' / 'jupyterhub' / 'jupyterhub_config.py')!r})\n"
            f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{ports[1]}'\n"
            f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{ports[2]}'\n"
            "c.Spawner.args = ['--LabApp.expose_app_in_browser=True']  # window.jupyterapp\n"
        )
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("BPKIT_", "JUPYTER", "JPY_"))
        }
        env.update(
            PATH=os.pathsep.join([str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
            BPKIT_HUB_INSTRUCTORS=names["instructor"],
            BPKIT_HUB_STUDENTS=f"{names['alice']},{names['bob']}",
            BPKIT_EXCHANGE=str(exchange),
            BPKIT_HUB_BIND_URL=url,
            BPKIT_HUB_PROXY=str(proxy),
        )
        uids = [pwd.getpwnam(n).pw_uid for n in names.values()]
        hub = Hub(config, state, env, url, uids)
        with Step("hub start"):
            hub.start()
        yield {"hub": hub, "users": users, "names": names, "exchange": exchange, "url": url}
    finally:
        t0 = time.monotonic()
        if hub is not None:
            seconds, killed = hub.stop()
            print(f"hub stopped in {seconds:.1f} s ({killed} leftover processes killed)")
            if killed or hub.tree.alive():
                print(hub.log_tail(2000))
        if users is not None:
            users.close()
        restore_modes(opened)
        shutil.rmtree(base, ignore_errors=True)
        TIMES["teardown"] = time.monotonic() - t0
        TIMES["total"] = time.monotonic() - t_start
        print("times: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()), flush=True)


def _grade_ids(nb) -> list[tuple[str, float]]:
    return [
        (c.metadata["nbgrader"]["grade_id"], float(c.metadata["nbgrader"].get("points", 0)))
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    ]


# ---------------------------------------------------------------- browser steps


def _shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _submit_login(browser, url, user, password):
    """Open the hub's log-in page and sign in; the hub starts the user's server meanwhile."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url + "/hub/login", timeout=60_000)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form [type=submit]")
    return page


def _lab_ready(page, user, timeout=150):
    page.wait_for_url(f"**/user/{user}/lab**", timeout=timeout * 1000)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell", timeout=timeout * 1000
    )
    page.evaluate("() => window.jupyterapp.restored.then(() => true)")


def _assignment_list(page):
    """Open Nbgrader > Assignment List; returns the menu's items."""
    page.click("#jp-MainMenu >> text=Nbgrader")
    items = page.locator(".lm-Menu-content").first.inner_text()
    page.click(".lm-Menu-item >> text=Assignment List")
    return items


def _row(page, section):
    return page.locator(f"#{section}_assignments_list .list_item", has_text=ASSIGNMENT).first


def _formgrader(page, action, shot, timeout=180):
    """Click one action of 01_chain_rule's row in Formgrader's Manage Assignments; its log."""
    page.locator("td.name", has_text=ASSIGNMENT).first.wait_for(timeout=60_000)
    row = page.locator("tr").filter(has=page.locator("td.name", has_text=ASSIGNMENT)).first
    row.locator(f"td.{action} a").click()
    modal = page.locator("#success-modal, #error-modal").first
    modal.wait_for(timeout=timeout * 1000)
    page.wait_for_timeout(300)
    text = modal.inner_text()
    _shot(page, shot)
    assert modal.get_attribute("id") == "success-modal", f"Formgrader {action} failed:\n{text}"
    modal.locator(".modal-footer button", has_text="OK").first.click()
    modal.wait_for(state="detached", timeout=10_000)
    return text


def _fetch_edit_submit(page, student, answer):
    menu = _assignment_list(page)
    assert "Formgrader" not in menu, f"a student's Nbgrader menu offers Formgrader:\n{menu}"
    released = _row(page, "released")
    released.wait_for(timeout=60_000)
    _shot(page, f"{student}_1_released")
    released.locator("button", has_text="fetch").click()
    fetched = _row(page, "fetched")
    fetched.wait_for(timeout=60_000)
    fetched.locator("a.assignment-notebooks-link").click()
    fetched.locator(".nested_list_item a", has_text=ASSIGNMENT).click()
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
        return w && w.context && w.context.isReady && w.content && w.content.widgets
               && w.content.widgets.length > 0; }""",
        timeout=60_000,
    )
    path = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
    assert path == f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb", path
    found = page.evaluate(
        """([gid, src]) => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const i = nb.widgets.findIndex(c => ((c.model.getMetadata('nbgrader') || {}).grade_id) === gid);
        if (i < 0) return false;
        nb.widgets[i].model.sharedModel.setSource(src);
        nb.activeCellIndex = i;
        nb.scrollToItem(i, 'center');
        return true;
    }""",
        [EXERCISE, answer],
    )
    assert found, f"no {EXERCISE} cell in the fetched notebook"
    page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
    )
    page.wait_for_timeout(300)
    _shot(page, f"{student}_2_answered")
    page.click(".lm-TabBar-tab >> text=Assignments")
    _row(page, "fetched").locator("button", has_text="Submit").click()
    submitted = _row(page, "submitted")
    submitted.wait_for(timeout=60_000)
    page.wait_for_timeout(300)
    _shot(page, f"{student}_3_submitted")


def test_course_on_jupyterhub(course_hub):
    from playwright.sync_api import sync_playwright

    hub, users, names = course_hub["hub"], course_hub["users"], course_hub["names"]
    url, exchange = course_hub["url"], course_hub["exchange"]
    instructor = names["instructor"]
    course = users.home(instructor) / "course"
    source = nbformat.read(REPO / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    grades = _grade_ids(source)
    total = sum(p for _, p in grades)
    expected = {
        "alice": sum(p for g, p in grades if g.startswith(f"{EXERCISE}_test")),
        "bob": 0.0,
    }
    assert expected["alice"] > 0, f"{EXERCISE} has no test cell with points in {ASSIGNMENT}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            with Step("instructor logs in, generates and releases in Formgrader"):
                ipage = _submit_login(browser, url, instructor, users.passwords[instructor])
                # the students sign in now: the hub starts their servers while the instructor works
                spages = {
                    s: _submit_login(browser, url, names[s], users.passwords[names[s]])
                    for s in ("alice", "bob")
                }
                _lab_ready(ipage, instructor)
                ipage.click("#jp-MainMenu >> text=Nbgrader")
                menu = ipage.locator(".lm-Menu-content").first.inner_text()
                _shot(ipage, "instructor_0_lab")
                ipage.keyboard.press("Escape")
                assert "Formgrader" in menu, f"the instructor's Nbgrader menu:\n{menu}"
                fg = ipage.context.new_page()
                fg.goto(f"{url}/user/{instructor}/formgrader/manage_assignments", timeout=60_000)
                _formgrader(fg, "assign", "instructor_1_generated")
                log = _formgrader(fg, "release", "instructor_2_released")
                assert "Successfully released" in log, log
                hub.snapshot()
            assert (exchange / "bpkit" / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

            for student, page in spages.items():
                with Step(f"{student} fetches, answers, submits"):
                    _lab_ready(page, names[student])
                    other = page.request.get(f"{url}/user/{names[student]}/formgrader/")
                    assert other.status == 404, f"a student has Formgrader ({other.status})"
                    _fetch_edit_submit(page, student, ANSWERS[student])
                    hub.snapshot()

            with Step("instructor collects in Formgrader"):
                log = _formgrader(fg, "collect", "instructor_3_collected")
            for student in ("alice", "bob"):
                nb_path = course / "submitted" / names[student] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
                assert nb_path.is_file(), f"not collected: {nb_path}\n{log}"
                got = nbformat.read(nb_path, as_version=4)
                cell = next(
                    c
                    for c in got.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == EXERCISE
                )
                assert cell.source.strip() == ANSWERS[student].strip(), cell.source

            with Step("grading as root: deploy/jupyterhub/grade.py (sandboxed autograder grade)"):
                proc = subprocess.run(
                    [str(VENV_BIN / "python"), str(REPO / "deploy" / "jupyterhub" / "grade.py")]
                    + [instructor, "--jobs", "2"],
                    env={**hub.env, "BPKIT_HUB_COURSE_DIR": str(course)},
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                assert proc.returncode == 0, proc.stderr[-3000:]
            rows = _grades_csv(course / "results" / "grades.csv")
            print("grades.csv:", *rows.values(), sep="\n  ")
            for student in ("alice", "bob"):
                row = rows[(names[student], ASSIGNMENT)]
                assert row["status"] == "ok", row
                assert float(row["score"]) == expected[student], (student, row)
                assert float(row["max_score"]) == total, (student, row)
            owner = {p.stat().st_uid for p in course.rglob("*")}
            assert owner == {users.home(instructor).stat().st_uid}, "course files not given back"

            with Step("instructor generates and releases feedback in Formgrader"):
                fg.reload()
                _formgrader(fg, "generate-feedback", "instructor_4_feedback_generated")
                _formgrader(fg, "release-feedback", "instructor_5_feedback_released")
            released = list((exchange / "bpkit" / "feedback").glob("*.html"))
            assert len(released) == 2, released

            with Step("alice fetches and reads her feedback"):
                page = spages["alice"]
                page.click(".lm-TabBar-tab >> text=Assignments")
                page.locator("#refresh_assignments_list").click()
                submitted = _row(page, "submitted")
                submitted.locator("text=feedback available to fetch").wait_for(timeout=60_000)
                submitted.locator("button", has_text="Fetch Feedback").click()
                view = page.locator("#submitted_assignments_list a", has_text="view feedback")
                view.first.wait_for(timeout=60_000)
                _shot(page, "alice_4_feedback_fetched")
                view.first.click()
                item = page.locator(".jp-DirListing-item", has_text=f"{ASSIGNMENT}.html").first
                item.wait_for(timeout=30_000)
                item.dblclick()
                frame = page.frame_locator(".jp-HTMLViewer iframe").first
                # the body exists before the page is written into the iframe: wait for the score
                frame.get_by_text(re.compile(r"Score: [\d.]+ / [\d.]+")).first.wait_for(
                    timeout=60_000
                )
                text = frame.locator("body").inner_text()
                _shot(page, "alice_5_feedback_open")
            header = re.search(rf"{ASSIGNMENT} \(Score: ([\d.]+) / ([\d.]+)\)", text)
            assert header, f"no score line in the feedback page:\n{text[:1500]}"
            assert (float(header[1]), float(header[2])) == (expected["alice"], total), header[0]
            home = users.home(names["alice"])
            assert list((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        finally:
            hub.snapshot()
            browser.close()


def _grades_csv(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}
