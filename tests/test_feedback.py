"""Feedback HTML (autograder.feedback): what a student sees, and that nothing in it runs.

Hostile content (script tags, event handlers, javascript: URLs, iframes, SVG with script, MathML
tricks, math that smuggles HTML) is put in markdown cells and in every kind of output; the page
is opened in Chromium with its Content-Security-Policy removed (so the sanitiser alone is
tested) and every script would change document.title or log a marker. Math must render as
MathML with the network blocked.
"""

from __future__ import annotations

import base64
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.feedback import (
    FeedbackSummary,
    fallback_page,
    render_feedback,
    render_feedback_checked,
    render_feedback_limited,
)
from autograder.feedback import TestRow as Row

# a 1x1 PNG
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _nbg(grade_id, **kw):
    md = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
    md.update(grade_id=grade_id, **kw)
    return {"nbgrader": md}


def _js(k):
    return f"document.title='XSS-{k}';console.log('XSS-{k}')"


def hostile_notebook():
    """Every way we know of getting script into a page, once in markdown, once per output."""
    payloads = [
        f"<script>{_js(1)}</script>",
        f'<img src="x" onerror="{_js(2)}">',
        f"<a id='jslink' href=\"javascript:{_js(3)}\">click me</a>",
        f"[md link](javascript:{_js(4)})",
        f'<iframe src="data:text/html,<script>parent.{_js(5)}</script>"></iframe>',
        f'<iframe srcdoc="<script>parent.{_js(6)}</script>"></iframe>',
        f'<svg onload="{_js(7)}"><script>{_js(8)}</script></svg>',
        f'<math><mtext><table><mglyph><style><img src=x onerror="{_js(9)}">',
        f'<details open ontoggle="{_js(10)}">x</details>',
        f'<body onload="{_js(11)}">',
        f'<object data="javascript:{_js(12)}"></object><embed src="javascript:{_js(13)}">',
        f'<form action="javascript:{_js(14)}"><button id="btn">go</button></form>',
        f'<a id="datalink" href="data:text/html,<script>{_js(15)}</script>">data</a>',
        f'<div style="background:url(javascript:{_js(16)})">styled</div>',
        f'<meta http-equiv="refresh" content="0;url=javascript:{_js(17)}">',
    ]
    text = "\n\n".join(payloads)
    math_tricks = (
        'Math that carries HTML: $\\text{<img src=x onerror="' + _js(20) + '">}$ and '
        "$\\href{javascript:" + _js(21) + "}{x}$ and $$\\style{x:expression(" + _js(22) + ")}{y}$$"
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" onload="' + _js(30) + '">'
        "<script>" + _js(31) + "</script><circle r='4'/></svg>"
    )
    cells = [
        new_markdown_cell("# Hostile\n\n" + text),
        new_markdown_cell(math_tricks),
        new_code_cell(
            "x = 1",
            outputs=[
                new_output("display_data", data={"text/html": text.replace("XSS-", "XSS-h")}),
                new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<svg>"}),
                new_output("display_data", data={"text/markdown": text.replace("XSS-", "XSS-m")}),
                new_output("execute_result", data={"text/html": svg}, execution_count=1),
                new_output("stream", name="stdout", text=f"<script>{_js(40)}</script>"),
                new_output(
                    "error",
                    ename="CheckFailed",
                    evalue=f'<img src=x onerror="{_js(41)}">',
                    traceback=[f"<script>{_js(42)}</script>"],
                ),
            ],
            execution_count=1,
        ),
    ]
    return new_notebook(cells=cells)


def hostile_summary():
    return FeedbackSummary(
        student=f"<script>{_js(50)}</script>",
        assignment="05_worked_example",
        notebook="05_worked_example.ipynb",
        status="flagged",
        reasons=[f'<img src=x onerror="{_js(51)}">'],
        tests=[
            Row(
                f'<b onmouseover="{_js(52)}">id</b>',
                f"<script>{_js(53)}</script>",
                1,
                0.0,
                "failed",
                f"<script>{_js(54)}</script>",
            )
        ],
        score=0,
        max_score=1,
        awaiting_hand_points=0,
    )


def _require_chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} not installed")
    pytest.importorskip("playwright.sync_api")


def _open(html_text, tmp_path, name="feedback.html"):
    """Open the page in Chromium with every network request refused; returns (browser,
    page, console lines, requests attempted)."""
    from playwright.sync_api import sync_playwright

    path = tmp_path / name
    path.write_text(html_text, encoding="utf-8")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    page = browser.new_page()
    console, requests = [], []
    page.on("console", lambda m: console.append(m.text))
    page.on("dialog", lambda d: (console.append("dialog " + d.message), d.dismiss()))

    def route(r):
        if not r.request.url.startswith("file://"):
            requests.append(r.request.url)
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_timeout(300)
    return pw, browser, page, console, requests


def test_no_student_script_runs_in_chromium(tmp_path):
    _require_chromium()
    html_text = render_feedback(hostile_notebook(), hostile_summary())
    # the sanitiser alone must hold: open the page without its Content-Security-Policy
    stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html_text)
    assert stripped != html_text
    for variant, text in (("no-csp", stripped), ("as-shipped", html_text)):
        pw, browser, page, console, _ = _open(text, tmp_path, f"{variant}.html")
        try:
            title = page.title()
            for sel in ("#jslink", "a", "#btn", "#datalink", "details summary"):
                for el in page.query_selector_all(sel)[:20]:
                    try:
                        el.click(timeout=500, no_wait_after=True)
                    except Exception:
                        pass
            page.mouse.move(10, 10)
            page.wait_for_timeout(500)
            dom = page.evaluate(
                """() => ({
                scripts: document.querySelectorAll('script').length,
                frames: document.querySelectorAll('iframe, object, embed, frame').length,
                handlers: [...document.querySelectorAll('*')].filter(
                    e => [...e.attributes].some(a => /^on/i.test(a.name))).length,
                jsurls: [...document.querySelectorAll('[href], [src], [action], [data]')].filter(
                    e => /^\\s*(javascript|vbscript):/i.test(
                        e.getAttribute('href') || e.getAttribute('src')
                        || e.getAttribute('action') || e.getAttribute('data') || '')).length,
                url: location.href,
            })"""
            )
            final_title = page.title()
        finally:
            browser.close()
            pw.stop()
        markers = [c for c in console if "XSS-" in c]
        assert title == final_title == "05_worked_example (%s)" % hostile_summary().student, (
            variant,
            title,
            final_title,
        )
        assert not markers, (variant, markers)
        assert dom["scripts"] == 0 and dom["frames"] == 0, (variant, dom)
        assert dom["handlers"] == 0 and dom["jsurls"] == 0, (variant, dom)
        assert dom["url"].startswith("file://"), (variant, dom)
    assert "<script" not in html_text.lower()


def test_math_renders_offline_as_mathml(tmp_path):
    _require_chromium()
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "The error $E = \\tfrac12 \\sum_k (y_k - t_k)^2$ and the delta\n"
                "$$\\delta_j = g'(a_j) \\sum_k w_{kj} \\delta_k$$\n"
                "and \\(x^2\\), with `$not math$` in code and a price of \\$5."
            ),
            new_code_cell(
                "", outputs=[new_output("display_data", data={"text/latex": "$\\frac{a}{b}$"})]
            ),
        ]
    )
    html_text = render_feedback(nb, FeedbackSummary("bob", "a", "a.ipynb", "ok"))
    pw, browser, page, console, requests = _open(html_text, tmp_path)
    try:
        got = page.evaluate(
            """() => ({
            maths: document.querySelectorAll('math').length,
            blocks: document.querySelectorAll('math[display="block"]').length,
            fracs: document.querySelectorAll('math mfrac').length,
            text: document.body.innerText,
            code: [...document.querySelectorAll('code')].map(c => c.innerText),
            width: Math.max(...[...document.querySelectorAll('math')].map(
                m => m.getBoundingClientRect().width)),
        })"""
        )
    finally:
        browser.close()
        pw.stop()
    assert requests == [], f"the page tried the network: {requests}"
    assert got["maths"] == 4 and got["blocks"] == 2 and got["fracs"] == 2, got
    assert got["width"] > 20, "MathML not laid out"
    assert "\\sum" not in got["text"] and "\\tfrac" not in got["text"], got["text"]
    assert "$not math$" in got["code"], got["code"]
    assert "$5" in got["text"]


def _graded_notebook():
    """A small executed notebook: a passing and a failing check of one exercise, a plot, a
    written answer, an error with a traceback through the grader's paths."""
    tb = [
        "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
        "\x1b[0;31mCheckFailed\x1b[0m                               Traceback (most recent call last)",
        "File \x1b[0;32m/opt/bpkit/bpkit/course/checks.py:120\x1b[0m, in \x1b[0;36mcheck_number\x1b[0m",
        "\x1b[0;31mCheckFailed\x1b[0m: step: sign error: gradient descent goes against the gradient",
    ]
    cells = [
        new_markdown_cell("## Exercise `step`", metadata=_nbg("t1", locked=True)),
        new_code_cell("w_new = w + eta * g", metadata=_nbg("step", solution=True)),
        new_code_cell(
            "checks.check_number('step', w_new, 0.5)",
            metadata=_nbg("step_test", grade=True, locked=True, points=1),
            outputs=[new_output("stream", name="stdout", text="step: passed\n")],
        ),
        new_code_cell(
            "# hidden",
            metadata=_nbg("step_test2", grade=True, locked=True, points=2),
            outputs=[
                new_output(
                    "error",
                    ename="CheckFailed",
                    evalue="step: sign error: gradient descent goes against the gradient",
                    traceback=tb,
                )
            ],
        ),
        new_code_cell(
            "plt.plot(x)",
            outputs=[new_output("display_data", data={"image/png": PNG, "text/plain": "<Fig>"})],
        ),
        new_markdown_cell(
            "YOUR ANSWER HERE", metadata=_nbg("why", solution=True, grade=True, points=2)
        ),
    ]
    summary = FeedbackSummary(
        student="alice",
        assignment="01_chain_rule",
        notebook="01_chain_rule.ipynb",
        status="ok",
        reasons=[],
        tests=[
            Row("step_test", "step", 1, 1.0, "passed", ""),
            Row(
                "step_test2",
                "step",
                2,
                0.0,
                "failed",
                "step: sign error: gradient descent goes against the gradient",
            ),
            Row("why", "why", 2, None, "written: waiting", ""),
        ],
        score=1,
        max_score=5,
        awaiting_hand_points=2,
    )
    return new_notebook(cells=cells), summary


def test_feedback_a_student_can_read():
    nb, summary = _graded_notebook()
    html_text = render_feedback(nb, summary)
    assert "<title>01_chain_rule (alice)</title>" in html_text
    assert "<h1>01_chain_rule (alice)</h1>" in html_text
    assert "1 / 5 points" in html_text and "2 points for written answers are waiting" in html_text
    rows = re.findall(
        r"<tr><td>(.*?)</td><td class=\"num\">(.*?)</td><td[^>]*>(.*?)</td>", html_text
    )
    assert [r[0] for r in rows] == ["step", "why"], rows  # grouped by exercise, no test ids
    assert rows[0][1] == "1 / 3" and rows[0][2].startswith("not yet right: sign error")
    assert rows[1][2] == "written answer: waiting for the instructor"
    assert "step_test2" not in html_text and "/opt/bpkit" not in html_text
    assert "\x1b" not in html_text
    msg = html_text.index('class="message">step: sign error')
    details = html_text.index("<details><summary>Traceback", msg)
    assert msg < details and "bpkit/course/checks.py:120" in html_text[details:]
    assert f'src="data:image/png;base64,{PNG}"' in html_text


def test_fallback_page_has_the_scores():
    _, summary = _graded_notebook()
    text = fallback_page(summary, "rendering the notebook took longer than 20 s")
    assert "1 / 5 points" in text and "longer than 20 s" in text and "<script" not in text


def test_pathological_markdown_is_cut_at_the_limit():
    nb = new_notebook(
        cells=[new_markdown_cell("[" * 100_000), new_markdown_cell("$" + "{" * 50_000 + "$")]
    )
    _, summary = _graded_notebook()
    t0 = time.monotonic()
    html_text, reason = render_feedback_checked(nb, summary, timeout_s=20, memory_mb=1024)
    elapsed = time.monotonic() - t0
    assert elapsed < 22, f"took {elapsed:.1f} s with a 20 s limit"
    assert html_text is not None or "longer than" in reason

    # the limit itself: a renderer that cannot finish in time is cut and says why
    t0 = time.monotonic()
    html_text, reason = render_feedback_checked(nb, summary, timeout_s=0.05)
    assert html_text is None and "longer than 0.05 s" in reason
    assert time.monotonic() - t0 < 5
    assert render_feedback_limited(nb, summary, timeout_s=0.05) is None


def test_memory_limit_of_the_renderer():
    big = base64.b64encode(os.urandom(10_000_000)).decode()  # ~100 MB to render
    nb = new_notebook(
        cells=[new_code_cell("", outputs=[new_output("display_data", data={"image/png": big})])]
    )
    _, summary = _graded_notebook()
    html_text, reason = render_feedback_checked(nb, summary, timeout_s=20, memory_mb=60)
    assert html_text is None and reason, reason
    html_text, reason = render_feedback_checked(nb, summary, timeout_s=30, memory_mb=1024)
    assert reason is None and len(html_text) > len(big)


def test_render_in_child_equals_render_in_process():
    nb, summary = _graded_notebook()
    assert render_feedback_limited(nbformat.from_dict(nb), summary) == render_feedback(nb, summary)
