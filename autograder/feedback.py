"""Feedback HTML for one graded notebook: the score first, then the student's notebook.

    html = render_feedback_limited(executed_notebook, summary)   # child process, time/memory cap
    if html is None:                                              # (reason via the _checked form)
        html = fallback_page(summary, "rendering took too long")

What the page shows: the title "<assignment> (<student>)", the total and the points waiting for
hand grading, one row per exercise (test cells grouped by exercise name, written answers by
their name), then every cell: rendered markdown with its math, code, plots (image outputs),
and for a failed check its message first with the traceback folded under it.

Safety: nothing from the notebook reaches the page unescaped except through a sanitiser.
Markdown and text/html outputs go through nh3 (ammonia); math is converted on this side to
MathML by latex2mathml and rebuilt from a whitelist of MathML elements and attributes (its output
may carry raw HTML from \\text{...}); SVG is shown only as an <img> (scripts never run there);
image data is re-encoded base64. The page loads nothing from the network and holds no script;
its Content-Security-Policy forbids scripts, frames and any fetch but data: images on top.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

STATES = (
    "passed",
    "failed",
    "not attempted",
    "review",
    "written: waiting",
    "written: empty",
    "written: graded",
)


@dataclass
class TestRow:
    """One graded cell: an autograded test cell or a written answer.

    grade_id: the cell's nbgrader grade_id; exercise: the name shown (test cells of one exercise
    share it; a written answer's is its grade_id); points: the cell's maximum; score: points
    earned, None while unknown (a written answer not yet graded, a test under review);
    state: one of STATES; message: one line (the check's hint, the reason for a review).
    """

    grade_id: str
    exercise: str
    points: float
    score: float | None
    state: str
    message: str = ""


@dataclass
class FeedbackSummary:
    student: str
    assignment: str
    notebook: str
    status: str  # the grades.csv status (ok, timeout, flagged, ...)
    reasons: list[str] = field(default_factory=list)
    tests: list[TestRow] = field(default_factory=list)
    score: float = 0.0
    max_score: float = 0.0
    awaiting_hand_points: float = 0.0


# ------------------------------------------------------------------------------------- text


ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
PATHS = [
    (re.compile(r"/opt/bpkit/"), ""),
    (re.compile(r"/opt/grader/"), ""),
    (re.compile(r"/tmp/work/"), ""),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "cell"),
    (re.compile(r"[^\s\"'(]*/site-packages/"), ""),
    (re.compile(re.escape(str(Path(__file__).resolve().parents[1])) + "/"), ""),
]


def clean_text(text: str) -> str:
    """ANSI colours removed, the grader's and the machine's paths shortened."""
    text = ANSI.sub("", text)
    for pattern, repl in PATHS:
        text = pattern.sub(repl, text)
    return text


def esc(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def fmt(x) -> str:
    if x is None:
        return ""
    x = round(float(x), 2)
    return str(int(x)) if x == int(x) else ("%.2f" % x).rstrip("0")


def pts(x) -> str:
    return "%s point%s" % (fmt(x), "" if x == 1 else "s")


def joined(source) -> str:
    return "".join(source) if isinstance(source, list) else (source or "")


# ------------------------------------------------------------------------------------- math

MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup",
    "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
    "mstyle", "mpadded", "mphantom", "menclose", "merror", "mmultiscripts", "mprescripts",
    "none", "mfenced",
}  # fmt: skip
MATHML_ATTRS = {
    "display", "mathvariant", "stretchy", "fence", "form", "separator", "accent",
    "accentunder", "columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines",
    "rowlines", "frame", "width", "height", "depth", "lspace", "rspace", "linethickness",
    "displaystyle", "scriptlevel", "notation", "minsize", "maxsize", "largeop",
    "movablelimits", "symmetric", "open", "close", "separators", "mathcolor",
}  # fmt: skip
SAFE_VALUE = re.compile(r"^[A-Za-z0-9 .#%,+\-]{0,40}$")
MAX_MATH_DEPTH = 80
MAX_MATH_CHARS = 20_000


def _mathml_node(el, depth, out):
    tag = el.tag.rsplit("}", 1)[-1]
    if tag not in MATHML_TAGS or depth > MAX_MATH_DEPTH:
        if depth > MAX_MATH_DEPTH:
            raise ValueError("formula nested too deeply")
        return  # unknown element: dropped with its content (raw HTML from \text{<...>})
    attrs = "".join(
        ' %s="%s"' % (name, esc(value))
        for name, value in sorted(el.attrib.items())
        if name in MATHML_ATTRS and SAFE_VALUE.match(value)
    )
    out.append("<%s%s>" % (tag, attrs))
    if el.text:
        out.append(esc(el.text))
    for child in el:
        _mathml_node(child, depth + 1, out)
        if child.tail:
            out.append(esc(child.tail))
    out.append("</%s>" % tag)


def tex_to_mathml(tex: str, display: bool) -> str:
    """LaTeX to whitelisted MathML; the LaTeX as code when it cannot be converted."""
    from latex2mathml.converter import convert

    tex = tex.strip()
    try:
        if len(tex) > MAX_MATH_CHARS:
            raise ValueError("formula too long")
        root = ElementTree.fromstring(convert(tex, display="block" if display else "inline"))
        out: list[str] = []
        _mathml_node(root, 0, out)
        if not out:
            raise ValueError("empty formula")
        return "".join(out)
    except Exception:  # latex2mathml raises many kinds (and RecursionError on deep nesting)
        shown = ("$$%s$$" if display else "$%s$") % tex[:2000]
        return '<code class="tex">%s</code>' % esc(shown)


def split_math(text: str):
    """[(kind, text)] with kind 'text', 'inline' or 'display'; code spans and fences stay text.

    One left-to-right pass; a delimiter whose closer does not occur later is remembered as
    unmatched, so the scan stays linear on hostile input (thousands of unmatched '$' or '\\(').
    """
    pieces, n, i, start = [], len(text), 0, 0
    missing = set()

    def find(closer, frm):
        if closer in missing:
            return -1
        k = text.find(closer, frm)
        if k < 0:
            missing.add(closer)
        return k

    while i < n:
        ch = text[i]
        if ch == "`":
            j = i
            while j < n and text[j] == "`":
                j += 1
            k = find(text[i:j], j)
            i = j if k < 0 else k + (j - i)
            continue
        opener = closer = None
        display = True
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "(":
                opener, closer, display = "\\(", "\\)", False
            elif nxt == "[":
                opener, closer = "\\[", "\\]"
            elif text.startswith("\\begin{", i):
                m = re.match(r"\\begin\{([A-Za-z]{1,20}\*?)\}", text[i : i + 40])
                if m:
                    end = "\\end{%s}" % m.group(1)
                    k = find(end, i + len(m.group(0)))
                    if k >= 0:
                        pieces.append(("text", text[start:i]))
                        pieces.append(("display", text[i : k + len(end)]))
                        i = start = k + len(end)
                        continue
                i += 1
                continue
            else:
                i += 2  # an escaped character (\$ stays a dollar)
                continue
        elif ch == "$":
            if text.startswith("$$", i):
                opener, closer = "$$", "$$"
            else:
                opener, closer, display = "$", "$", False
        if opener is None:
            i += 1
            continue
        k = find(closer, i + len(opener))
        body = text[i + len(opener) : k] if k >= 0 else ""
        if k < 0 or not body.strip() or (not display and "\n\n" in body):
            i += len(opener)
            continue
        pieces.append(("text", text[start:i]))
        pieces.append(("display" if display else "inline", body))
        i = start = k + len(closer)
    pieces.append(("text", text[start:]))
    return [p for p in pieces if p[1]]


# ------------------------------------------------------------------------------------- html

SAFE_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")


def _attribute_filter(tag, attr, value):
    if attr in ("src", "srcset", "poster", "background"):
        return value if tag == "img" and attr == "src" and SAFE_IMAGE.match(value) else None
    if attr == "href" and value.lower().startswith("data:"):
        return None
    return value


def sanitize(fragment: str) -> str:
    """Student HTML: nh3 (ammonia) with its default safe tags; images only as inline data."""
    import nh3

    return nh3.clean(
        fragment,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=_attribute_filter,
        link_rel="noopener noreferrer nofollow",
    )


def markdown_html(source: str, attachments=None) -> str:
    """Markdown with math: math cut out first, markdown rendered, sanitised, then MathML put back."""
    import mistune

    nonce = secrets.token_hex(6)
    maths, parts = [], []
    for kind, text in split_math(source):
        if kind == "text":
            parts.append(text)
        else:
            parts.append("bpkitmath%sx%dx" % (nonce, len(maths)))
            maths.append((text, kind == "display"))
    for name, bundle in (attachments or {}).items():
        for mime in ("image/png", "image/jpeg", "image/gif"):
            if isinstance(bundle, dict) and isinstance(bundle.get(mime), str):
                data = _b64(bundle[mime])
                if data:
                    parts = [
                        p.replace("attachment:" + name, "data:%s;base64,%s" % (mime, data))
                        for p in parts
                    ]
                break
    md = mistune.create_markdown(
        escape=False, plugins=["strikethrough", "table", "url", "task_lists"]
    )
    body = sanitize(md("".join(parts)))

    def put_back(m):
        k = int(m.group(1))
        if k >= len(maths):
            return m.group(0)
        tex, display = maths[k]
        mathml = tex_to_mathml(tex, display)
        return '<div class="math">%s</div>' % mathml if display else mathml

    return re.sub("bpkitmath%sx(\\d+)x" % nonce, put_back, body)


def _b64(data) -> str | None:
    """Validated, re-encoded base64 (None when it is not base64)."""
    try:
        raw = base64.b64decode("".join(joined(data).split()), validate=True)
    except (ValueError, TypeError):
        return None
    return base64.b64encode(raw).decode("ascii")


def highlight(code: str) -> str:
    try:
        from pygments import highlight as pyg
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        if len(code) > 200_000:
            raise ValueError("too long to colour")
        return pyg(code, PythonLexer(), HtmlFormatter(nowrap=True))
    except Exception:
        return esc(code)


def _tex_output(text: str) -> str:
    text = text.strip()
    for a, b in (("$$", "$$"), ("\\[", "\\]"), ("$", "$"), ("\\(", "\\)")):
        if text.startswith(a) and text.endswith(b) and len(text) > len(a) + len(b):
            return '<div class="math">%s</div>' % tex_to_mathml(text[len(a) : -len(b)], True)
    return '<div class="math">%s</div>' % tex_to_mathml(text, True)


def output_html(out: dict) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        name = "stderr" if out.get("name") == "stderr" else "stdout"
        return '<pre class="out %s">%s</pre>' % (name, esc(clean_text(joined(out.get("text")))))
    if kind == "error":
        return error_html(out)
    if kind not in ("display_data", "execute_result"):
        return ""
    data = out.get("data") or {}
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in data:
            b64 = _b64(data[mime])
            if b64:
                return '<div class="out image"><img alt="plot" src="data:%s;base64,%s"></div>' % (
                    mime,
                    b64,
                )
    if "image/svg+xml" in data:  # as an image: scripts inside an SVG never run in <img>
        svg = joined(data["image/svg+xml"]).encode("utf-8", "replace")
        return (
            '<div class="out image"><img alt="figure" src="data:image/svg+xml;base64,%s"></div>'
            % (base64.b64encode(svg).decode("ascii"))
        )
    if "text/html" in data:
        return '<div class="out html">%s</div>' % sanitize(joined(data["text/html"]))
    if "text/markdown" in data:
        return '<div class="out markdown">%s</div>' % markdown_html(joined(data["text/markdown"]))
    if "text/latex" in data:
        return '<div class="out latex">%s</div>' % _tex_output(joined(data["text/latex"]))
    if "text/plain" in data:
        return '<pre class="out">%s</pre>' % esc(clean_text(joined(data["text/plain"])))
    return ""


MESSAGE_ONLY = ("CheckFailed", "NotAnswered", "ReferenceUsed")


def error_message(ename: str, evalue: str) -> str:
    evalue = clean_text(evalue or "").strip()
    if ename in MESSAGE_ONLY and evalue:
        return evalue
    return "%s: %s" % (ename, evalue) if evalue else (ename or "error")


def error_html(out: dict) -> str:
    """The message first, in words; the traceback folded underneath."""
    msg = error_message(out.get("ename", ""), out.get("evalue", ""))
    tb = clean_text("\n".join(out.get("traceback") or [])).strip()
    parts = ['<div class="out error"><p class="message">%s</p>' % esc(msg)]
    if tb and tb != msg and tb.count("\n") > 0:
        parts.append(
            "<details><summary>Traceback (where it happened)</summary><pre>%s</pre></details>"
            % esc(tb)
        )
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------------- the page

LABELS = {
    "passed": "passed",
    "failed": "not yet right",
    "not attempted": "not attempted",
    "review": "to be reviewed by the instructor",
    "written: waiting": "written answer: waiting for the instructor",
    "written: empty": "written answer: empty",
    "written: graded": "written answer: graded",
}
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "form-action 'none'; frame-src 'none'; base-uri 'none'"
)
CSS = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 62rem; padding: 1rem 1.5rem;
       color: #1d1d1f; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.total { font-size: 1.25rem; margin: .3rem 0 1rem; }
.total .waiting { color: #6a5d00; font-size: 1rem; }
table.summary { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
table.summary td, table.summary th { border-bottom: 1px solid #ddd; padding: .35rem .5rem;
       text-align: left; vertical-align: top; }
table.summary td.num { white-space: nowrap; text-align: right; }
.state-passed { color: #0b6b2f; } .state-failed { color: #a4001a; }
.state-review, .state-written-waiting { color: #6a5d00; } .state-not-attempted,
.state-written-empty { color: #666; }
.notice { background: #fff6d6; border-left: 4px solid #d9a800; padding: .5rem .8rem; }
.cell { margin: .8rem 0; }
.cell-label { font-size: .85rem; color: #444; margin-bottom: .2rem; }
.cell-label b { color: #1d1d1f; }
pre { background: #f5f5f7; padding: .5rem .7rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-word; margin: .2rem 0; font-size: 13px; }
pre.stderr { background: #fff0f0; }
.out.error { border-left: 4px solid #c4001f; background: #fff4f4; padding: .3rem .7rem; }
.out.error .message { margin: .2rem 0; font-weight: 600; white-space: pre-wrap; }
.out.image img { max-width: 100%; }
.math { overflow-x: auto; margin: .5rem 0; }
.markdown img { max-width: 100%; }
details summary { cursor: pointer; color: #444; font-size: .9rem; }
code.tex { color: #555; }
"""


def state_class(state: str) -> str:
    return "state-" + re.sub(r"[^a-z]+", "-", state).strip("-")


def exercise_rows(tests):
    """Rows grouped by exercise in first-seen order: (exercise, points, score|None, state, msg)."""
    groups: dict[str, list[TestRow]] = {}
    for row in tests:
        groups.setdefault(row.exercise, []).append(row)
    out = []
    for name, rows in groups.items():
        points = sum(float(r.points or 0) for r in rows)
        scores = [r.score for r in rows if r.score is not None]
        score = sum(scores) if scores else None
        states = [r.state for r in rows]
        for state in ("failed", "review", "not attempted", "written: empty", "written: waiting"):
            if state in states:
                break
        else:
            state = states[0] if len(set(states)) == 1 else "passed"
        message = next((r.message for r in rows if r.state == state and r.message), "")
        message = clean_text(message).strip().splitlines()[0] if message.strip() else ""
        if message.startswith(name + ":"):  # the checks' messages start with the exercise name
            message = message[len(name) + 1 :].strip()
        out.append((name, points, score, state, message))
    return out


def summary_html(summary: FeedbackSummary) -> str:
    parts = [
        "<h1>%s (%s)</h1>" % (esc(summary.assignment), esc(summary.student)),
        '<p class="total">Total: <b>%s / %s</b>' % (fmt(summary.score), pts(summary.max_score)),
    ]
    if summary.awaiting_hand_points:
        parts.append(
            ' <span class="waiting">(%s for written answers are waiting for the instructor)'
            "</span>" % pts(summary.awaiting_hand_points)
        )
    parts.append("</p>")
    if summary.status != "ok" or summary.reasons:
        parts.append('<div class="notice">')
        if summary.status != "ok":
            parts.append("<p>Grading status: <b>%s</b></p>" % esc(summary.status))
        if summary.reasons:
            parts.append("<ul>%s</ul>" % "".join("<li>%s</li>" % esc(r) for r in summary.reasons))
        parts.append("</div>")
    parts.append(
        '<table class="summary"><thead><tr><th>exercise</th><th>score</th><th>result</th>'
        "</tr></thead><tbody>"
    )
    for name, points, score, state, message in exercise_rows(summary.tests):
        shown = "%s / %s" % (fmt(score) if score is not None else "&ndash;", fmt(points))
        text = esc(LABELS.get(state, state))
        if message:
            text += ": " + esc(message)
        parts.append(
            '<tr><td>%s</td><td class="num">%s</td><td class="%s">%s</td></tr>'
            % (esc(name), shown, state_class(state), text)
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def page(title: str, body: str) -> str:
    from pygments.formatters import HtmlFormatter

    try:
        pyg_css = HtmlFormatter().get_style_defs(".source")
    except Exception:
        pyg_css = ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="%s">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>%s</title><style>%s\n%s</style></head><body>\n%s\n</body></html>\n"
        % (CSP, esc(title), CSS, pyg_css, body)
    )


def cell_html(cell: dict, rows: dict) -> str:
    md = cell.get("metadata", {}).get("nbgrader", {})
    md = md if isinstance(md, dict) else {}
    gid = md.get("grade_id") if isinstance(md.get("grade_id"), str) else None
    row = rows.get(gid)
    kind = cell.get("cell_type")
    label = ""
    if row is not None:
        what = "Written answer" if row.state.startswith("written") else "Check for"
        label = (
            '<div class="cell-label">%s <b>%s</b> &middot; %s &middot; <span class="%s">%s</span></div>'
            % (
                what,
                esc(row.exercise),
                pts(row.points),
                state_class(row.state),
                esc(LABELS.get(row.state, row.state)),
            )
        )
    elif md.get("solution") and gid:
        label = '<div class="cell-label">Your answer: <b>%s</b></div>' % esc(gid)
    source = joined(cell.get("source"))
    if kind == "markdown":
        body = '<div class="markdown">%s</div>' % markdown_html(source, cell.get("attachments"))
        return '<div class="cell md">%s%s</div>' % (label, body)
    if kind != "code":
        return '<div class="cell raw"><pre>%s</pre></div>' % esc(source)
    code = '<pre class="source">%s</pre>' % highlight(source)
    if row is not None and not row.state.startswith("written"):
        code = "<details><summary>check code</summary>%s</details>" % code
    outs = "".join(output_html(o) for o in cell.get("outputs") or [] if isinstance(o, dict))
    return '<div class="cell code">%s%s%s</div>' % (label, code, outs)


def render_feedback(notebook: dict, summary: FeedbackSummary) -> str:
    """The feedback page (a complete HTML document) for an executed notebook."""
    rows = {r.grade_id: r for r in summary.tests}
    cells = notebook.get("cells") or []
    body = [summary_html(summary), "<hr><h2>Your notebook</h2>"]
    body += [cell_html(c, rows) for c in cells if isinstance(c, dict)]
    return page("%s (%s)" % (summary.assignment, summary.student), "\n".join(body))


def fallback_page(summary: FeedbackSummary, reason: str = "") -> str:
    """A page with the scores only (when the notebook itself could not be rendered)."""
    note = (
        '<p class="notice">Your notebook could not be shown here%s; the scores above are '
        "complete.</p>" % (": " + esc(reason) if reason else "")
    )
    return page("%s (%s)" % (summary.assignment, summary.student), summary_html(summary) + note)


# ------------------------------------------------------------------- rendering with limits


def render_feedback_checked(
    notebook: dict, summary: FeedbackSummary, timeout_s: float = 20, memory_mb: int = 1024
) -> tuple[str | None, str | None]:
    """render_feedback in a child process with a wall-time and memory limit.

    Returns (html, None), or (None, reason) when the child ran over a limit or failed.
    """
    job = json.dumps({"notebook": notebook, "summary": asdict(summary), "memory_mb": memory_mb})
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder.feedback"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(job.encode("utf-8"), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None, "rendering the notebook took longer than %g s" % timeout_s
    finally:
        _kill(proc)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):  # also after a timeout
            if pipe is not None and not pipe.closed:
                pipe.close()
    if proc.returncode == 0:
        return out.decode("utf-8"), None
    if proc.returncode == 3 or b"MemoryError" in err:
        return None, "rendering the notebook needed more than %d MB" % memory_mb
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    return None, "rendering the notebook failed after %.1f s (exit %s: %s)" % (
        time.monotonic() - t0,
        proc.returncode,
        tail[0][:200],
    )


def render_feedback_limited(
    notebook: dict, summary: FeedbackSummary, timeout_s: float = 20, memory_mb: int = 1024
) -> str | None:
    """render_feedback with limits; None when it ran over them (render_feedback_checked says
    why)."""
    return render_feedback_checked(notebook, summary, timeout_s, memory_mb)[0]


def _kill(proc):
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _child() -> int:
    import resource

    job = json.loads(sys.stdin.buffer.read())
    limit = int(job.get("memory_mb") or 1024) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.setrecursionlimit(5000)
    s = job["summary"]
    s["tests"] = [TestRow(**t) for t in s.get("tests", [])]
    try:
        text = render_feedback(job["notebook"], FeedbackSummary(**s))
    except MemoryError:
        return 3
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
