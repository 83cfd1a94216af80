"""The adversarial corpus: each case builds one student's submission folder and states the outcome
the grader must give (grades.csv status and score, exercises that must earn nothing).

Expectations follow autograder/README.md ("Status rules" and "Cell handling") applied to the
``tiny`` fixture (relu 2 points, then dP_dw1 1, then nth_prime 1; see fixture.py). For example a
kernel that dies in the dP_dw1 answer cell keeps the relu points earned before the death
(status ``kernel_died``, score 2); a patch of numpy made in the relu answer cell changes nothing
(the tests run in the evaluator, another process): only the right answers earn points.

Resource attacks are bounded on purpose so that a grader without limits fails the test instead
of harming the shared machine: the memory bomb stops at 6 GB, the fork bomb at 3000 sleeping
children, and their success is turned into points (a correct answer only when the limit did not
hold), so a missing limit shows up as a wrong score.
"""

from __future__ import annotations

import copy
import os
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import fixture as fx

A = fx.ASSIGNMENT


@dataclass
class Ctx:
    """What the builders may use (an attacker is assumed to know every path)."""

    source_nb: Path  # instructor notebook with solutions and hidden tests
    release_nb: Path  # student version
    course: Path  # course folder (gradebook.db lives here)
    submissions: Path  # SUBMISSIONS root
    out: Path  # grader OUTDIR
    port: int  # host TCP server handing out the dP_dw1 answer
    host_ip: str | None  # a non-loopback address of the host
    token: str  # unique marker for files an attack tries to create
    size_limit: int = 20 * 2**20

    def release(self) -> nbformat.NotebookNode:
        return nbformat.read(self.release_nb, as_version=4)

    def solved(self) -> nbformat.NotebookNode:
        """The release with every answer cell holding the solution (markers removed)."""
        src = nbformat.read(self.source_nb, as_version=4)
        answers = {
            c.metadata.nbgrader["grade_id"]: fx.strip_markers(c.source)
            for c in src.cells
            if c.metadata.get("nbgrader", {}).get("solution")
        }
        nb = self.release()
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid in answers:
                cell.source = answers[gid]
        return nb

    def outside_markers(self) -> list[Path]:
        """Files the write_outside attack tries to create on the host."""
        return [
            Path("/tmp") / f"bpkit_adv_{self.token}",
            fx_repo() / f".bpkit_adv_{self.token}",
            Path.home() / f".bpkit_adv_{self.token}",
            self.course / f"bpkit_adv_{self.token}",
            self.submissions / f"bpkit_adv_{self.token}",
            self.out / f"bpkit_adv_{self.token}",
        ]


def fx_repo() -> Path:
    return Path(__file__).resolve().parents[2]


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def index(nb, gid: str) -> int:
    for i, cell in enumerate(nb.cells):
        if grade_id(cell) == gid:
            return i
    raise KeyError(gid)


def set_answer(nb, gid: str, source: str):
    nb.cells[index(nb, gid)].source = textwrap.dedent(source)
    return nb


def folder(sub: Path, student: str) -> Path:
    path = sub / student / A
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_nb(nb, sub: Path, student: str, name: str = f"{A}.ipynb") -> Path:
    path = folder(sub, student) / name
    nbformat.write(nb, path)
    return path


@dataclass
class Case:
    student: str
    build: Callable[[Ctx, Path, str], None]  # (ctx, SUBMISSIONS, student)
    outcomes: set  # allowed (status, score) pairs
    zero: tuple = ()  # exercises that must earn 0
    reason: str | None = None  # substring the reason must contain
    rows: dict = field(default_factory=dict)  # other (assignment -> (status, score)) rows
    untouched_tests: bool = False  # test cells as released: reason must not say "restored"
    what: str = ""


CASES: list[Case] = []


def case(student, outcomes, zero=(), reason=None, rows=None, untouched_tests=False):
    def register(build):
        CASES.append(
            Case(
                student,
                build,
                set(outcomes),
                tuple(zero),
                reason,
                rows or {},
                untouched_tests,
                (build.__doc__ or "").strip(),
            )
        )
        return build

    return register


# ------------------------------------------------------------------------------------------------
# reference submissions: the batch must still grade these right
# ------------------------------------------------------------------------------------------------


@case("good_full", {("ok", 4)}, untouched_tests=True)
def _(ctx, sub, st):
    """all three answers right"""
    write_nb(ctx.solved(), sub, st)


@case("good_stub", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"), untouched_tests=True)
def _(ctx, sub, st):
    """the release untouched"""
    write_nb(ctx.release(), sub, st)


@case("good_partial", {("ok", 2)}, zero=("dP_dw1", "nth_prime"), untouched_tests=True)
def _(ctx, sub, st):
    """relu right, the rest unanswered"""
    nb = ctx.release()
    nb.cells[index(nb, "relu")] = ctx.solved().cells[index(nb, "relu")]
    write_nb(nb, sub, st)


@case("good_wrong", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"), untouched_tests=True)
def _(ctx, sub, st):
    """a plausible wrong answer in every exercise"""
    nb = ctx.release()
    for gid, src in fx.WRONG.items():
        set_answer(nb, gid, src)
    write_nb(nb, sub, st)


@case("good_busy", {("ok", 4)}, untouched_tests=True)
def _(ctx, sub, st):
    """right answers plus the harmless things students do (imports of more bpkit and numpy
    modules, print options, SymPy pretty printing, a matplotlib plot, warnings filters, magics):
    nothing to flag"""
    src = """\
        %matplotlib inline
        import math, warnings
        import numpy.testing, numpy.linalg
        import bpkit.symbolic, bpkit.gradcheck
        import sympy as sp
        import matplotlib.pyplot as plt
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        np.set_printoptions(precision=3, suppress=True)
        sp.init_printing()
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        plt.show()
        def helper(v):
            return float(np.round(v, 3))
        dP_dw1 = helper(-11.0)
        """
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


# ------------------------------------------------------------------------------------------------
# files that are not a gradable notebook
# ------------------------------------------------------------------------------------------------


@case("bad_json", {("invalid", 0)})
def _(ctx, sub, st):
    """not JSON"""
    (folder(sub, st) / f"{A}.ipynb").write_text(
        '{"cells": [ {"cell_type": "code", ', encoding="utf-8"
    )


@case("json_not_notebook", {("invalid", 0)})
def _(ctx, sub, st):
    """JSON, but not a notebook"""
    (folder(sub, st) / f"{A}.ipynb").write_text('{"cells": 5, "nbformat": 4}', encoding="utf-8")


@case("json_deep", {("invalid", 0)})
def _(ctx, sub, st):
    """JSON nested 200000 deep (recursion bomb for json.loads)"""
    (folder(sub, st) / f"{A}.ipynb").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")


@case("nbformat3", {("invalid", 0)})
def _(ctx, sub, st):
    """a solved notebook saved as nbformat 3"""
    nb3 = nbformat.convert(ctx.solved(), 3)
    (folder(sub, st) / f"{A}.ipynb").write_text(nbformat.writes(nb3, version=3), encoding="utf-8")


@case("oversize", {("invalid", 0)})
def _(ctx, sub, st):
    """a solved notebook padded past the size limit with a markdown cell"""
    nb = ctx.solved()
    pad = ctx.size_limit + 2**20
    nb.cells.append(nbformat.v4.new_markdown_cell("x" * pad))
    write_nb(nb, sub, st)


@case("dir_as_notebook", {("invalid", 0)})
def _(ctx, sub, st):
    """tiny.ipynb is a directory"""
    (folder(sub, st) / f"{A}.ipynb").mkdir()


@case("fifo_notebook", {("invalid", 0)})
def _(ctx, sub, st):
    """tiny.ipynb is a named pipe (reading it would block forever)"""
    os.mkfifo(folder(sub, st) / f"{A}.ipynb")


@case("missing_nb", {("missing", 0)})
def _(ctx, sub, st):
    """assignment folder present but empty"""
    folder(sub, st)


@case("renamed_nb", {("missing", 0)}, reason="renamed")
def _(ctx, sub, st):
    """a solved notebook under another name"""
    write_nb(ctx.solved(), sub, st, name=f"{A} (1).ipynb")


@case("empty_student", {("missing", 0)})
def _(ctx, sub, st):
    """student folder with nothing in it"""
    (sub / st).mkdir(parents=True)


@case("unknown_asg", {("missing", 0)}, rows={"nosuch": ("invalid", 0)})
def _(ctx, sub, st):
    """a solved notebook filed under an assignment that does not exist"""
    path = sub / st / "nosuch"
    path.mkdir(parents=True)
    nbformat.write(ctx.solved(), path / "nosuch.ipynb")


for _odd in ("ann lee", "jos\u00e9", "-rf", "doe, jane", "new\nline"):
    case(_odd, {("invalid", 0)})(lambda ctx, sub, st: write_nb(ctx.solved(), sub, st))


@case("symlink_passwd", {("invalid", 0)})
def _(ctx, sub, st):
    """tiny.ipynb -> /etc/passwd"""
    os.symlink("/etc/passwd", folder(sub, st) / f"{A}.ipynb")


@case("symlink_source", {("invalid", 0)})
def _(ctx, sub, st):
    """tiny.ipynb -> the instructor's source notebook (solutions)"""
    os.symlink(ctx.source_nb, folder(sub, st) / f"{A}.ipynb")


@case("symlink_asgdir", {("invalid", 0)})
def _(ctx, sub, st):
    """tiny/ -> the instructor's source folder"""
    (sub / st).mkdir(parents=True)
    os.symlink(ctx.source_nb.parent, sub / st / A)


@case("symlink_student", {("invalid", 0)})
def _(ctx, sub, st):
    """the whole student folder -> another student's folder"""
    os.symlink(sub / "good_full", sub / st)


# ------------------------------------------------------------------------------------------------
# restructured notebooks
# ------------------------------------------------------------------------------------------------


@case("extra_files", {("ok", 4)}, reason="extra")
def _(ctx, sub, st):
    """a solved notebook plus unrelated files and a folder"""
    write_nb(ctx.solved(), sub, st)
    base = folder(sub, st)
    (base / "notes.txt").write_text("my notes\n")
    (base / "helper.py").write_text("X = 1\n")
    (base / "data").mkdir()
    (base / "data" / "points.csv").write_text("1,2\n")


@case("shadow_bpkit", {("ok", 0), ("flagged", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """wrong answers plus bpkit.py / numpy.py / bpkit/ beside the notebook whose checks pass anything"""
    nb = ctx.release()
    for gid, src in fx.WRONG.items():
        set_answer(nb, gid, src)
    write_nb(nb, sub, st)
    fake = textwrap.dedent("""\
        import contextlib, types
        class _Any:
            NotAnswered = AssertionError
            def __getattr__(self, name):
                if name == "forbidden":
                    return lambda *f: contextlib.nullcontext()
                if name == "call":
                    return lambda n, fn, *a, **k: fn(*a, **k)
                return lambda *a, **k: None
        checks = _Any()
        relu = lambda a: a
        """)
    base = folder(sub, st)
    (base / "bpkit.py").write_text(fake)
    (base / "bpkit").mkdir()
    (base / "bpkit" / "__init__.py").write_text(fake)
    (base / "bpkit" / "checks.py").write_text(
        fake.replace("checks = _Any()", "import sys\nsys.modules[__name__] = _Any()")
    )


@case("deleted_test", {("ok", 2)}, zero=("relu",), reason="deleted")
def _(ctx, sub, st):
    """solved, but relu's test cell deleted (its points are lost)"""
    nb = ctx.solved()
    del nb.cells[index(nb, "relu_test")]
    write_nb(nb, sub, st)


@case("deleted_answer", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """solved, but relu's answer cell deleted"""
    nb = ctx.solved()
    del nb.cells[index(nb, "relu")]
    write_nb(nb, sub, st)


@case("duplicated_test", {("ok", 2)}, zero=("relu",), reason="duplicate")
def _(ctx, sub, st):
    """wrong relu; its test cell duplicated, the first copy replaced by `pass`"""
    nb = ctx.solved()
    set_answer(nb, "relu", fx.WRONG["relu"])
    i = index(nb, "relu_test")
    dup = copy.deepcopy(nb.cells[i])
    nb.cells[i].source = "pass\n"
    nb.cells.insert(i + 1, dup)
    write_nb(nb, sub, st)


@case("duplicated_points", {("ok", 4)})
def _(ctx, sub, st):
    """solved; relu's test cell copied three times (points must not multiply)"""
    nb = ctx.solved()
    i = index(nb, "relu_test")
    for _ in range(3):
        nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
    write_nb(nb, sub, st)


@case("fake_points", {("ok", 4)})
def _(ctx, sub, st):
    """solved; relu_test claims 100 points and a new grade cell `bonus` claims 50"""
    nb = ctx.solved()
    nb.cells[index(nb, "relu_test")].metadata.nbgrader["points"] = 100
    bonus = nbformat.v4.new_code_cell("pass\n")
    bonus.metadata["nbgrader"] = {
        "schema_version": 3,
        "grade": True,
        "solution": False,
        "locked": True,
        "grade_id": "bonus",
        "points": 50,
        "task": False,
    }
    nb.cells.append(bonus)
    write_nb(nb, sub, st)


@case("reordered", {("ok", 4)}, reason="reorder")
def _(ctx, sub, st):
    """solved; the dP_dw1 exercise moved above the relu exercise (still runs)"""
    nb = ctx.solved()
    lo, hi = index(nb, "dP_dw1_text"), index(nb, "dP_dw1_test") + 1
    block = nb.cells[lo:hi]
    del nb.cells[lo:hi]
    at = index(nb, "relu_text")
    nb.cells[at:at] = block
    write_nb(nb, sub, st)


@case("test_above_answer", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """solved; relu's test cell moved above relu's answer cell (fails: relu undefined there)"""
    nb = ctx.solved()
    cell = nb.cells.pop(index(nb, "relu_test"))
    nb.cells.insert(index(nb, "relu"), cell)
    write_nb(nb, sub, st)


@case("retyped_test", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """wrong relu; relu's test cell turned into markdown (restored to code, so it fails)"""
    nb = ctx.solved()
    set_answer(nb, "relu", fx.WRONG["relu"])
    i = index(nb, "relu_test")
    md = nbformat.v4.new_markdown_cell(nb.cells[i].source, metadata=nb.cells[i].metadata)
    nb.cells[i] = md
    write_nb(nb, sub, st)


@case("retyped_test_good", {("ok", 4)}, reason="retyped")
def _(ctx, sub, st):
    """solved; relu's test cell turned into markdown (restored to code, so it passes)"""
    nb = ctx.solved()
    i = index(nb, "relu_test")
    nb.cells[i] = nbformat.v4.new_markdown_cell(nb.cells[i].source, metadata=nb.cells[i].metadata)
    write_nb(nb, sub, st)


@case("retyped_answer", {("ok", 4)})
def _(ctx, sub, st):
    """solved; relu's answer cell turned into markdown (its type is restored)"""
    nb = ctx.solved()
    i = index(nb, "relu")
    nb.cells[i] = nbformat.v4.new_markdown_cell(nb.cells[i].source, metadata=nb.cells[i].metadata)
    write_nb(nb, sub, st)


@case("edited_test", {("ok", 2)}, zero=("relu",), reason="restored")
def _(ctx, sub, st):
    """wrong relu; relu's test cell replaced by `assert True`"""
    nb = ctx.solved()
    set_answer(nb, "relu", fx.WRONG["relu"])
    nb.cells[index(nb, "relu_test")].source = "assert True\n"
    write_nb(nb, sub, st)


@case("stale_outputs", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """wrong answers with faked success outputs already in the test cells"""
    nb = ctx.release()
    for gid, src in fx.WRONG.items():
        set_answer(nb, gid, src)
    for n, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.execution_count = n + 1
            if (grade_id(cell) or "").endswith("_test"):
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="passed\n")]
    write_nb(nb, sub, st)


@case("kernelspec_other", {("ok", 4), ("invalid", 0)})
def _(ctx, sub, st):
    """solved; notebook metadata names a kernel that does not exist"""
    nb = ctx.solved()
    nb.metadata["kernelspec"] = {"name": "evil-kernel", "display_name": "Evil", "language": "bash"}
    write_nb(nb, sub, st)


# ------------------------------------------------------------------------------------------------
# crashes, loops, bombs, floods
# ------------------------------------------------------------------------------------------------


@case("kernel_exit", {("kernel_died", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """os._exit(1) in the dP_dw1 answer cell (relu earned before the death)"""
    write_nb(set_answer(ctx.solved(), "dP_dw1", "import os\nos._exit(1)\ndP_dw1 = -11\n"), sub, st)


@case("kernel_kill9", {("kernel_died", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """SIGKILL to itself in the relu answer cell, right answers afterwards"""
    src = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + fx.strip_markers(
        fx.RELU_ANSWER
    )
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


@case("kernel_segfault", {("kernel_died", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """a segmentation fault (ctypes NULL read) in the dP_dw1 answer cell"""
    write_nb(
        set_answer(ctx.solved(), "dP_dw1", "import ctypes\nctypes.string_at(0)\ndP_dw1 = -11\n"),
        sub,
        st,
    )


@case("sigint_loop", {("timeout", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """endless loop that ignores SIGINT in the dP_dw1 answer cell"""
    src = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("plain_loop", {("timeout", 2), ("timeout", 3)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """endless (interruptible) loop in the dP_dw1 answer cell"""
    write_nb(set_answer(ctx.solved(), "dP_dw1", "while True:\n    pass\n"), sub, st)


@case("total_timeout", {("timeout", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """nine 4 s cells after relu's test: each under --cell-timeout, together over --timeout (30 s)"""
    nb = ctx.solved()
    i = index(nb, "relu_test") + 1
    for _ in range(9):
        nb.cells.insert(i, nbformat.v4.new_code_cell("import time\ntime.sleep(4)\n"))
    write_nb(nb, sub, st)


MEMORY_BOMB = """\
chunks = []
for _ in range(24):                       # 24 x 256 MB = 6 GB, touched
    chunks.append(bytearray(b"\\x01") * (256 * 2**20))
dP_dw1 = -11                              # reached only without a memory limit
"""


# the sandbox's memory cgroup may kill the kernel before the allocation fails (later tests: 0)
@case("mem_bytearray", {("memory", 3), ("memory", 2)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """bytearrays grown in 256 MB steps towards 6 GB in the dP_dw1 answer cell"""
    write_nb(set_answer(ctx.solved(), "dP_dw1", MEMORY_BOMB), sub, st)


@case("mem_numpy", {("memory", 3)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """one 50 GB NumPy allocation in the dP_dw1 answer cell (lazy pages: harmless if unlimited)"""
    src = "x = np.zeros(50 * 2**30 // 8)\ndP_dw1 = -11   # reached only without a memory limit\n"
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


FORK_BOMB = """\
import ctypes, os, time
born, stop = 0, time.monotonic() + 3        # 3 s: well inside the 5 s cell timeout
try:
    while born < 3000 and time.monotonic() < stop:
        if os.fork() == 0:
            ctypes.CDLL(None).prctl(15, b"bpkadvfork", 0, 0, 0)   # PR_SET_NAME, to find leftovers
            time.sleep(20)
            os._exit(0)
        born += 1
except OSError:
    pass
dP_dw1 = -11 if born >= 600 else None   # right only if no process limit (a few hundred) held
"""


# the children hold the sandbox's whole process budget for 20 s: the kernel may then be unable to
# start the thread its next cell needs, and that exercise (nth_prime) scores 0 too
@case("fork_bomb", {("ok", 3), ("ok", 2)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """fork sleeping children (up to 3000, for 3 s) in the dP_dw1 answer cell"""
    write_nb(set_answer(ctx.solved(), "dP_dw1", FORK_BOMB), sub, st)


# Under its --memory limit the kernel may fail to serialise the 100 MB it buffered: then either no
# output arrives at all ("ok", 4) or the kernel dies in that cell, whose test then scores 0
# ("kernel_died", 2). The outputs stay bounded either way (test_outputs_bounded_...).
@case("print_100mb", {("output_limit", 4), ("timeout", 4), ("ok", 4), ("kernel_died", 2)})
def _(ctx, sub, st):
    """answers dP_dw1 right, then prints 100 MB in the same cell (may also hit the cell timeout)"""
    src = 'dP_dw1 = -11\nfor _ in range(100):\n    print("x" * (2**20 - 1))\n'
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("giant_image", {("output_limit", 4), ("timeout", 4), ("memory", 4)})
def _(ctx, sub, st):
    """answers dP_dw1 right, then displays a 30 MB 'PNG' in the same cell"""
    src = (
        "dP_dw1 = -11\nfrom IPython.display import Image, display\n"
        "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + bytes(30 * 2**20), format='png'))\n"
    )
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("giant_html", {("output_limit", 4), ("timeout", 4), ("memory", 4)})
def _(ctx, sub, st):
    """answers dP_dw1 right, then displays 30 MB of HTML in the same cell"""
    src = (
        "dP_dw1 = -11\nfrom IPython.display import HTML, display\n"
        "display(HTML('<p>x</p>' * (30 * 2**20 // 8)))\n"
    )
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


# ------------------------------------------------------------------------------------------------
# network and file system
# ------------------------------------------------------------------------------------------------


@case("network", {("ok", 3)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """fetches the dP_dw1 answer from a server on the host (loopback and LAN address) or the web"""
    hosts = ["127.0.0.1", "localhost"] + ([ctx.host_ip] if ctx.host_ip else [])
    src = f"""\
        import socket, urllib.request
        dP_dw1 = None
        for host in {hosts!r}:
            try:
                with socket.create_connection((host, {ctx.port}), timeout=1) as s:
                    dP_dw1 = int(s.recv(64).decode())
                    break
            except (OSError, ValueError):
                pass
        try:
            urllib.request.urlopen("http://example.com/", timeout=2).read(100)
            dP_dw1 = -11
        except Exception:
            pass
        """
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("read_solution", {("ok", 3)}, zero=("nth_prime",))
def _(ctx, sub, st):
    """hunts for 7919 in the solutions, the gradebook, other submissions and anything readable
    (in the dP_dw1 answer cell, whose answer is right only if none of those paths is visible)"""
    known = [
        str(ctx.source_nb),
        str(ctx.course / "gradebook.db"),
        str(ctx.submissions / "good_full" / A / f"{A}.ipynb"),
        str(fx_repo() / "notebooks"),
    ]
    src = f"""\
        import os, re, time
        nth_prime = None
        pattern = re.compile(rb"nth_prime = ([0-9]{{4}})|abs.nth_prime - ([0-9]{{4}}).")
        deadline = time.time() + 3.0
        skip = {{"proc", "sys", "dev", "usr", "lib", "lib64", "bin", "sbin", "etc", "boot", "run",
                 ".venv", ".git", "site-packages", "node_modules", "__pycache__"}}

        def scan(path):
            global nth_prime
            try:
                if not os.path.isfile(path) or os.path.getsize(path) > 30_000_000:
                    return
                with open(path, "rb") as f:
                    m = pattern.search(f.read())
                if m:
                    nth_prime = int(m.group(1) or m.group(2))
            except Exception:
                pass

        roots = {known!r} + [os.getcwd(), os.path.dirname(os.getcwd()), "/work", "/tmp", "/root",
                             "/home", "/srv", "/var/tmp", "/opt", "/"]
        for root in roots:
            if nth_prime is not None or time.time() > deadline:
                break
            if os.path.isfile(root):
                scan(root)
                continue
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d not in skip]
                for name in filenames:
                    if name.endswith((".ipynb", ".db", ".json", ".csv", ".html", ".py", ".txt")):
                        scan(os.path.join(dirpath, name))
                if nth_prime is not None or time.time() > deadline:
                    break
        visible = [p for p in {known!r} if os.path.exists(p)]
        dP_dw1 = 11 if visible else -11     # instructor paths must not even exist in here
        """
    nb = set_answer(ctx.solved(), "dP_dw1", src)
    write_nb(
        set_answer(nb, "nth_prime", "pass  # set by the search above, if it found anything\n"),
        sub,
        st,
    )


@case("write_outside", {("ok", 4)})
def _(ctx, sub, st):
    """solved; tries to create files on the host, corrupt the source notebook, forge the gradebook,
    overwrite another student's submission and the grader's output"""
    markers = [str(p) for p in ctx.outside_markers()]
    victims = [
        str(ctx.source_nb),
        str(ctx.submissions / "good_stub" / A / f"{A}.ipynb"),
        str(ctx.out / "grades.csv"),
    ]
    gradebook = str(ctx.course / "gradebook.db")
    src = f"""\
        import os, sqlite3
        for path in {markers!r}:
            try:
                with open(path, "w") as f:
                    f.write("written from a submission")
            except OSError:
                pass
        for path in {victims!r}:
            try:
                with open(path, "a") as f:
                    f.write("garbage")
            except OSError:
                pass
        try:
            db = sqlite3.connect({gradebook!r}, timeout=1)
            db.execute("UPDATE grade SET manual_score = 1000")
            db.commit()
        except Exception:
            pass
        """
    src = textwrap.dedent(src) + fx.strip_markers(fx.PRIME_ANSWER)
    write_nb(set_answer(ctx.solved(), "nth_prime", src), sub, st)


# ------------------------------------------------------------------------------------------------
# integrity: monkeypatching, calling the reference
# ------------------------------------------------------------------------------------------------


@case("patch_numpy", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """wrong relu plus numpy's comparisons made to always agree (in the relu answer cell)"""
    src = """\
        np.allclose = lambda *a, **k: True
        np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(np.asarray(a), np.asarray(b)).shape, bool)
        np.array_equal = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        def relu(a):
            return a
        """
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


@case("patch_builtins", {("ok", 3)}, zero=("nth_prime",))
def _(ctx, sub, st):
    """builtins.abs replaced so the wrong prime 7907 passes (in the nth_prime answer cell)"""
    src = "import builtins\nbuiltins.abs = lambda x: 0\nnth_prime = 7907\n"
    write_nb(set_answer(ctx.solved(), "nth_prime", src), sub, st)


@case("patch_checks", {("ok", 3)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """bpkit.course.checks' functions replaced by no-ops, wrong dP_dw1 (in its answer cell)"""
    src = """\
        for _name in ("check_number", "check_array", "check_expr", "check_gradient"):
            setattr(checks, _name, lambda *a, **k: None)
        dP_dw1 = 11
        """
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("rebind_checks", {("ok", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """the notebook's names `checks` and `abs` rebound to permissive fakes; wrong answers after"""
    src = """\
        import contextlib
        class _Lenient:
            NotAnswered = AssertionError
            def __getattr__(self, name):
                if name == "forbidden":
                    return lambda *f: contextlib.nullcontext()
                if name == "call":
                    return lambda n, fn, *a, **k: fn(*a, **k)
                return lambda *a, **k: None
        checks = _Lenient()
        abs = lambda x: 0
        dP_dw1 = 11
        """
    nb = set_answer(ctx.solved(), "dP_dw1", src)
    write_nb(set_answer(nb, "nth_prime", fx.WRONG["nth_prime"]), sub, st)


@case("patch_showtraceback", {("ok", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """IPython's showtraceback silenced so failing tests print no error; wrong answers after"""
    src = (
        "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
        "ip._showtraceback = lambda *a, **k: None\ndP_dw1 = 11\n"
    )
    nb = set_answer(ctx.solved(), "dP_dw1", src)
    write_nb(set_answer(nb, "nth_prime", fx.WRONG["nth_prime"]), sub, st)


@case("patch_custom_exc", {("ok", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """every exception swallowed by an IPython custom exception handler; wrong answers after"""
    src = "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\ndP_dw1 = 11\n"
    nb = set_answer(ctx.solved(), "dP_dw1", src)
    write_nb(set_answer(nb, "nth_prime", fx.WRONG["nth_prime"]), sub, st)


@case("patch_input_transformer", {("ok", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """an IPython input transformer that turns every later test cell into `pass`"""
    src = """\
        def _neuter(lines):
            text = "".join(lines)
            if "checks." in text or "assert" in text or "raise" in text:
                return ["pass\\n"]
            return lines
        get_ipython().input_transformers_cleanup.append(_neuter)
        dP_dw1 = 11
        """
    nb = set_answer(ctx.solved(), "dP_dw1", src)
    write_nb(set_answer(nb, "nth_prime", fx.WRONG["nth_prime"]), sub, st)


@case("patch_ast_transformer", {("ok", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """an IPython AST transformer that deletes assert/raise statements and check calls"""
    src = """\
        import ast
        class _Strip(ast.NodeTransformer):
            def visit_Assert(self, node):
                return ast.Pass()
            def visit_Raise(self, node):
                return ast.Pass()
            def visit_Call(self, node):
                self.generic_visit(node)
                f = node.func
                if isinstance(f, ast.Attribute) and f.attr.startswith("check_"):
                    return ast.Constant(None)
                return node
        get_ipython().ast_transformers.append(_Strip())
        dP_dw1 = 11
        """
    nb = set_answer(ctx.solved(), "dP_dw1", src)
    write_nb(set_answer(nb, "nth_prime", fx.WRONG["nth_prime"]), sub, st)


@case("reference_call", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """relu answered by calling bpkit.relu"""
    write_nb(set_answer(ctx.solved(), "relu", "def relu(a):\n    return bpkit.relu(a)\n"), sub, st)


@case("reference_alias", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """relu answered by an imported alias of the reference"""
    src = "from bpkit.activations import relu as _ref\ndef relu(a):\n    return _ref(a)\n"
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


# not defended (autograder/README.md): a copy of the reference's code object escapes the guard
@case("reference_codecopy", {("ok", 4)})
def _(ctx, sub, st):
    """relu built from a copy of the reference's code object (escapes the __code__ swap)"""
    src = (
        "import types\nrelu = types.FunctionType(bpkit.relu.__code__, bpkit.relu.__globals__, "
        "'relu')\n"
    )
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


@case("reference_unguarded", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """checks.forbidden replaced by a no-op, relu = bpkit.relu"""
    src = "import contextlib\nchecks.forbidden = lambda *f: contextlib.nullcontext()\nrelu = bpkit.relu\n"
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


# ------------------------------------------------------------------------------------------------
# the evaluator: attacks on the shell that used to run the tests, answers that are not data
# (every answer below is wrong unless stated, so any point beyond the right ones is undeserved)
# ------------------------------------------------------------------------------------------------

WRONG_ALL = {
    "relu": fx.WRONG["relu"],
    "dP_dw1": fx.WRONG["dP_dw1"],
    "nth_prime": fx.WRONG["nth_prime"],
}


def all_wrong(ctx, first_cell_prefix=""):
    nb = ctx.solved()
    for gid, src in WRONG_ALL.items():
        set_answer(nb, gid, (first_cell_prefix if gid == "relu" else "") + src)
    return nb


@case("display_pub_swap", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """the kernel's display publisher and session.send drop every error message; wrong answers"""
    prefix = """\
        ip = get_ipython()
        _send = ip.kernel.session.send
        def _quiet(stream, msg_or_type, *a, **k):
            kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type.get("msg_type")
            if kind == "error":
                return None
            if isinstance(msg_or_type, dict) and msg_or_type.get("content", {}).get("status") == "error":
                msg_or_type["content"]["status"] = "ok"
            return _send(stream, msg_or_type, *a, **k)
        ip.kernel.session.send = _quiet
        ip.display_pub.publish = lambda *a, **k: None
        """
    write_nb(all_wrong(ctx, textwrap.dedent(prefix)), sub, st)


@case("event_rewrites_tests", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """a pre_run_cell callback posing as IPython's own rewrites the next (test) cell, then undoes itself"""
    prefix = """\
        ip = get_ipython()
        def _rewrite(info):
            if "checks." in (info.raw_cell or ""):
                ip.input_transformers_post.append(lambda lines: ["pass\\n"])
        _rewrite.__module__ = "IPython.core.events"
        ip.events.register("pre_run_cell", _rewrite)
        """
    write_nb(all_wrong(ctx, textwrap.dedent(prefix)), sub, st)


@case("patch_private_checks", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """private helpers of bpkit.course.checks made to accept anything; wrong answers"""
    prefix = """\
        checks._close = lambda *a, **k: True
        checks._to_float = lambda name, got: -11.0
        checks._to_array = lambda name, got: np.array([0.0, 0.0, 0.0, 0.5, 3.0])
        """
    write_nb(all_wrong(ctx, textwrap.dedent(prefix)), sub, st)


@case("patch_numpy_submodules", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """globals of NumPy's submodules patched (isclose, allclose, array_equal); wrong answers"""
    prefix = """\
        import numpy
        for _mod in list(__import__("sys").modules.values()):
            if getattr(_mod, "__name__", "").startswith("numpy") and hasattr(_mod, "isclose"):
                try:
                    _mod.isclose = lambda a, b, *r, **k: numpy.ones(numpy.broadcast(a, b).shape, bool)
                    _mod.allclose = lambda *a, **k: True
                except Exception:
                    pass
        """
    write_nb(all_wrong(ctx, textwrap.dedent(prefix)), sub, st)


@case("builtins_in_namespace", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """abs, float, isinstance and AssertionError redefined in the notebook's namespace"""
    prefix = """\
        abs = lambda x: 0
        float = lambda x=0: -11.0
        isinstance = lambda *a: True
        class AssertionError(Exception):
            pass
        """
    write_nb(all_wrong(ctx, textwrap.dedent(prefix)), sub, st)


@case("planted_module", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """a fake bpkit.course.checks planted in sys.modules before the set-up cell imports it"""
    nb = all_wrong(ctx)
    plant = nbformat.v4.new_code_cell(
        textwrap.dedent("""\
        import sys, types, contextlib
        fake = types.ModuleType("bpkit.course.checks")
        fake.__getattr__ = lambda name: (lambda *a, **k: contextlib.nullcontext())
        sys.modules["bpkit.course.checks"] = fake
        """)
    )
    nb.cells.insert(0, plant)
    write_nb(nb, sub, st)


@case("fake_setup_cell", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """the locked set-up cell stripped of its metadata and replaced by a permissive fake `checks`"""
    nb = all_wrong(ctx)
    i = index(nb, "setup")
    nb.cells[i].metadata = {}
    nb.cells[i].source = textwrap.dedent("""\
        import numpy as np, bpkit, contextlib
        class checks:
            NotAnswered = AssertionError
            forbidden = staticmethod(lambda *f: contextlib.nullcontext())
            call = staticmethod(lambda n, fn, *a, **k: fn(*a, **k))
            check_number = check_array = staticmethod(lambda *a, **k: None)
        """)
    write_nb(nb, sub, st)


@case("frame_walker", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """answers whose __float__ / tolist() walk the stack to read the expected value from the checker"""
    src_dp = """\
        import sys
        class Sneaky:
            def _steal(self):
                f = sys._getframe(1)
                while f is not None:
                    for k, v in f.f_locals.items():
                        if k in ("expected", "want") and not isinstance(v, Sneaky):
                            return v
                    f = f.f_back
                return 11.0
            def __float__(self):
                return float(self._steal())
            def tolist(self):
                return self._steal().tolist() if hasattr(self._steal(), "tolist") else [1.0] * 5
        dP_dw1 = Sneaky()
        """
    src_relu = "def relu(a):\n    return Sneaky()\n"
    nb = ctx.solved()
    i = index(nb, "relu")
    set_answer(nb, "dP_dw1", src_dp)
    nb.cells.insert(i, nb.cells.pop(index(nb, "dP_dw1")))  # Sneaky defined before relu uses it
    set_answer(nb, "relu", src_relu)
    set_answer(nb, "nth_prime", fx.WRONG["nth_prime"])
    write_nb(nb, sub, st)


@case("answer_too_big", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """relu returns a 100 MB array (over the transfer cap); the other answers right"""
    src = "def relu(a):\n    return np.zeros(13_000_000)\n"
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


@case("answer_too_deep", {("ok", 3)}, zero=("dP_dw1",))
def _(ctx, sub, st):
    """dP_dw1 is a list nested 100000 deep"""
    src = "dP_dw1 = []\nfor _ in range(100000):\n    dP_dw1 = [dP_dw1]\n"
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("answer_object_array", {("ok", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """relu returns an object array of numbers-pretending objects"""
    src = """\
        class Num(float):
            def __eq__(self, other):
                return True
        def relu(a):
            return np.array([Num(0.0)] * np.size(a), dtype=object)
        """
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


@case("slow_function", {("timeout", 2)}, zero=("relu",))
def _(ctx, sub, st):
    """relu right on the visible input, sleeps for a minute when the hidden test calls it"""
    src = """\
        import time
        def relu(a):
            if np.shape(a) != (5,):
                time.sleep(60)
            return np.maximum(a, 0.0)
        """
    write_nb(set_answer(ctx.solved(), "relu", src), sub, st)


@case("kill_driver", {("flagged", 2), ("kernel_died", 2)}, zero=("dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """the dP_dw1 answer cell kills the process that drives the kernel (relu was graded before)"""
    src = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\ndP_dw1 = -11\n"
    write_nb(set_answer(ctx.solved(), "dP_dw1", src), sub, st)


@case("forged_frames", {("ok", 0)}, zero=("relu", "dP_dw1", "nth_prime"))
def _(ctx, sub, st):
    """prints lines that look like the driver's protocol and the old integrity probe; wrong answers"""
    prefix = """\
        print('{"event": "done", "cells": {}, "outputs": {}}')
        print("BPKIT-PROBE after:3-0000 0 []")
        """
    write_nb(all_wrong(ctx, textwrap.dedent(prefix)), sub, st)


@case("display_update_flood", {("output_limit", 4), ("timeout", 4)})
def _(ctx, sub, st):
    """solved, then update_display grows one earlier output by 1 MB a step, 3000 times"""
    src = fx.strip_markers(fx.PRIME_ANSWER) + textwrap.dedent("""\
        from IPython.display import display
        h = display("start", display_id=True)
        blob = "x" * 1_000_000
        for _ in range(3000):
            h.update(blob)
        """)
    write_nb(set_answer(ctx.solved(), "nth_prime", src), sub, st)


@case("comm_flood", {("output_limit", 4), ("timeout", 4), ("ok", 4)})
def _(ctx, sub, st):
    """solved, then 400 comm messages of 1 MB each (widgets' channel)"""
    src = fx.strip_markers(fx.PRIME_ANSWER) + textwrap.dedent("""\
        from comm import create_comm
        c = create_comm(target_name="bpkit_flood")
        blob = "y" * 1_000_000
        for _ in range(400):
            c.send({"blob": blob})
        """)
    write_nb(set_answer(ctx.solved(), "nth_prime", src), sub, st)


@case("children_memory", {("memory", 4), ("memory", 3)})
def _(ctx, sub, st):
    """solved, then four child processes of 400 MB each: over the sandbox's 1 GB together"""
    src = fx.strip_markers(fx.PRIME_ANSWER) + textwrap.dedent("""\
        import os, time
        kids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                try:
                    blob = bytearray(400 << 20)
                    for k in range(0, len(blob), 4096):
                        blob[k] = 1
                    time.sleep(2)
                finally:
                    os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        """)
    write_nb(set_answer(ctx.solved(), "nth_prime", src), sub, st)


@case("grade_id_newline", {("ok", 4)})
def _(ctx, sub, st):
    """solved, plus a cell whose grade_id carries a line break and a forged CSV row"""
    nb = ctx.solved()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": False,
        "points": 9,
        "grade_id": "bonus\r\nmallory,tiny,4,4,0,ok,",
        "schema_version": 3,
    }
    nb.cells.append(cell)
    write_nb(nb, sub, st)


@case("grade_id_list", {("ok", 4)})
def _(ctx, sub, st):
    """solved, plus a cell whose grade_id is a list (written without nbformat's validation)"""
    import json

    nb = ctx.solved()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {
        "grade": False,
        "solution": True,
        "locked": False,
        "grade_id": ["relu"],
        "schema_version": 3,
    }
    nb.cells.append(cell)
    (folder(sub, st) / f"{A}.ipynb").write_text(json.dumps(nb))


@case("nested_json_output", {("ok", 4), ("output_limit", 4)})
def _(ctx, sub, st):
    """solved, then displays of JSON nested 900 deep and of a 50000-deep bracket string"""
    src = fx.strip_markers(fx.PRIME_ANSWER) + textwrap.dedent("""\
        from IPython.display import publish_display_data
        deep = []
        for _ in range(900):
            deep = [deep]
        publish_display_data({"application/json": {"x": deep}, "text/plain": "deep"})
        publish_display_data({"text/plain": "[" * 50000})
        """)
    write_nb(set_answer(ctx.solved(), "nth_prime", src), sub, st)


@case(".hidden_student", {("invalid", 0)}, reason="hidden")
def _(ctx, sub, st):
    """a student folder whose name starts with a dot"""
    write_nb(ctx.solved(), sub, st)


@case("bracket_markdown", {("ok", 4)})
def _(ctx, sub, st):
    """solved, plus a markdown cell of 100000 '[' (slow for markdown renderers)"""
    nb = ctx.solved()
    nb.cells.append(nbformat.v4.new_markdown_cell("[" * 100_000))
    write_nb(nb, sub, st)


@case("script_in_feedback", {("ok", 4)})
def _(ctx, sub, st):
    """solved, plus script and event-handler HTML in markdown and in outputs"""
    nb = ctx.solved()
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
        )
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from IPython.display import HTML, display\n"
            "display(HTML('<script>document.title=\"pwned\"</script>'))"
        )
    )
    write_nb(nb, sub, st)


def build_all(ctx: Ctx) -> dict[str, Case]:
    """Write every case under ctx.submissions; return {student: case}."""
    ctx.submissions.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # duplicated cells keep their ids on purpose
        warnings.simplefilter("ignore")
        for c in CASES:
            c.build(ctx, ctx.submissions, c.student)
    return {c.student: c for c in CASES}


def describe() -> str:
    return "\n".join(f"{c.student!r:28} {sorted(c.outcomes)}  {c.what}" for c in CASES)


if __name__ == "__main__":  # cd tests && python -m adversarial.corpus : list the cases
    print(describe())
    print(f"{len(CASES)} cases")
