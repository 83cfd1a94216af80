"""The trusted evaluator: decides every test verdict in a process that never runs student code.

The student's notebook runs in the sandboxed kernel (autograder/sandbox/driver.py), test cells
excluded. This process replays the SOURCE notebook's instructor cells (locked cells and test
cells, hidden tests included) in its own namespace, in step with the kernel: before an
instructor cell runs here, the kernel has run every student cell above it. Names an instructor
cell uses that no earlier instructor cell defines are the student's (found from the cells' code):
they are fetched from the kernel as data (autograder/sandbox/wire.py); functions and other
objects arrive as `Remote` handles whose calls run in the kernel with data in and data out.
Expected values, hidden tests and comparisons never leave this process.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import traceback
from dataclasses import dataclass, field

from .nbtools import nbg
from .sandbox import wire

IGNORED_NAMES = {"display", "get_ipython", "In", "Out", "_", "__", "___", "exit", "quit"}


class StudentCodeError(Exception):
    """The student's code raised; carries the kernel's exception name and message."""


class KernelGone(StudentCodeError):
    """The student's kernel died or stopped answering."""


class AnswerNotData(StudentCodeError):
    """The answer could not be read as data (see wire.py)."""


# ------------------------------------------------------------------------------------------------
# which names a cell defines and which it needs
# ------------------------------------------------------------------------------------------------


def cell_names(source):
    """(defined, free): top-level names the code binds, and names it reads that it does not bind
    first (reads inside function bodies included: they are looked up when the function runs)."""
    tree = ast.parse(source)
    defined, free = set(), []

    def add_free(name, scopes):
        if not any(name in s for s in scopes) and name not in defined and name not in free:
            if not hasattr(builtins, name) and name not in IGNORED_NAMES:
                free.append(name)

    def bind_targets(node, scope):
        """Names bound anywhere in node go into `scope` (a function's or a comprehension's)."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                scope.add(sub.id)

    def visit(node, scopes):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                add_free(node.id, scopes)
            else:
                scopes[-1].add(node.id)
                if len(scopes) == 1:
                    defined.add(node.id)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not isinstance(node, ast.Lambda):
                scopes[-1].add(node.name)
                if len(scopes) == 1:
                    defined.add(node.name)
                for d in node.decorator_list:
                    visit(d, scopes)
            for d in node.args.defaults + [d for d in node.args.kw_defaults if d]:
                visit(d, scopes)
            a = node.args
            local = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            local |= {x.arg for x in (a.vararg, a.kwarg) if x}
            body = node.body if isinstance(node.body, list) else [node.body]
            for stmt in body:
                bind_targets(stmt, local)
                for sub in ast.walk(stmt):
                    if isinstance(sub, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                        local.add(sub.name)
                    elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                        local |= {(x.asname or x.name).split(".")[0] for x in sub.names}
            for stmt in body:
                visit(stmt, scopes + [local])
            return
        if isinstance(node, ast.ClassDef):
            scopes[-1].add(node.name)
            if len(scopes) == 1:
                defined.add(node.name)
            for sub in node.bases + node.keywords + node.decorator_list:
                visit(sub, scopes)
            for stmt in node.body:
                visit(stmt, scopes + [set()])
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for x in node.names:
                name = (x.asname or x.name).split(".")[0]
                scopes[-1].add(name)
                if len(scopes) == 1:
                    defined.add(name)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            local = set()
            for gen in node.generators:
                visit(gen.iter, scopes + [local])
                bind_targets(gen.target, local)
                for cond in gen.ifs:
                    visit(cond, scopes + [local])
            for part in ("elt", "key", "value"):
                if hasattr(node, part):
                    visit(getattr(node, part), scopes + [local])
            return
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return
        for child in ast.iter_child_nodes(node):
            visit(child, scopes)

    for stmt in tree.body:
        visit(stmt, [set()])
    return defined, free


@dataclass
class Step:
    """One instructor cell of the source, where it runs, and what it needs from the student."""

    grade_id: str
    source: str
    is_test: bool
    position: int | None  # index in the prepared submission (None: deleted there)
    defines: set = field(default_factory=set)
    free: list = field(default_factory=list)
    student: list = field(default_factory=list)
    run: bool = True


def plan(source_nb, prepared_nb):
    """The instructor cells of the source in order, with their student names and positions."""
    where = {
        nbg(c).get("grade_id"): i for i, c in enumerate(prepared_nb.cells) if nbg(c).get("grade_id")
    }
    steps, known, deps = [], set(), {}
    for cell in source_nb.cells:
        md = nbg(cell)
        if (
            cell.cell_type != "code"
            or md.get("solution")
            or not (md.get("locked") or md.get("grade"))
        ):
            continue
        gid = md.get("grade_id")
        defines, free = cell_names(cell.source)
        student = [n for n in free if n not in known]
        for n in free:  # names a T-defined function reads when called
            student += [d for d in deps.get(n, ()) if d not in student]
        for n in defines:
            deps[n] = set(student)
        known |= defines
        steps.append(
            Step(gid, cell.source, bool(md.get("grade")), where.get(gid), defines, free, student)
        )
    # a locked cell that needs the student's work runs here only when a later cell reads
    # something it defines (plots and printouts of the student's answers stay in the kernel)
    for k, step in enumerate(steps):
        if step.student and not step.is_test:
            later = (
                set().union(*(set(s.free) for s in steps[k + 1 :])) if k + 1 < len(steps) else set()
            )
            step.run = bool(step.defines & later)
    return steps


# ------------------------------------------------------------------------------------------------
# handles on the student's objects
# ------------------------------------------------------------------------------------------------


class Remote:
    """A function or object that lives in the student's kernel; every use is a round trip."""

    __slots__ = ("_link", "_id", "_kind", "_label")

    def __init__(self, link, ident, kind, label):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_label", label)

    def __call__(self, *args, **kwargs):
        return self._link.call({"op": "call", "id": self._id}, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._link.call({"op": "getattr", "id": self._id, "name": name}, None, None)

    def __setattr__(self, name, value):
        raise TypeError("cannot set attributes of the student's %s" % self._label)

    def _method(self, name, *args):
        return self._link.call({"op": "method", "id": self._id, "name": name}, args, {})

    def __repr__(self):
        return "<student %s %s>" % (self._kind, self._label)

    def __float__(self):
        value = self._method("__float__")
        if type(value) is not float:
            raise TypeError("__float__ of the student's %s did not return a float" % self._label)
        return value

    def __bool__(self):
        value = self._method("__bool__") if self._kind == "object" else True
        return bool(value) if type(value) is bool else True

    def __hash__(self):
        return hash((id(self._link), self._id))


def _binary(name):
    def method(self, other):
        return self._method(name, other)

    method.__name__ = name
    return method


for _name in (
    "__add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __pow__ "
    "__rpow__ __matmul__ __rmatmul__ __lt__ __le__ __gt__ __ge__ __eq__ __ne__ __getitem__"
).split():
    setattr(Remote, _name, _binary(_name))
Remote.__neg__ = lambda self: self._method("__neg__")
Remote.__len__ = lambda self: int(self._method("__len__"))


class Link:
    """The evaluator's end of the conversation with the kernel (through the driver)."""

    def __init__(self, driver, call_timeout, read_sympy):
        self.driver, self.call_timeout, self.read_sympy = driver, call_timeout, read_sympy
        self.alive = True
        self.forbid = []
        self.sink = None  # where the student's prints during a call go (the test's capture)

    def _remote(self, ident, kind, label):
        return Remote(self, ident, kind, label)

    def _ref(self, obj):
        if isinstance(obj, Remote):
            return {"$": "ref", "id": obj._id, "kind": obj._kind, "label": obj._label}
        raise wire.WireError("a %s cannot be passed to the student's code" % type(obj).__name__)

    def _ask(self, request, timeout):
        if not self.alive:
            raise KernelGone("KernelDied: the kernel stopped earlier")
        try:
            reply = self.driver.request(
                {"cmd": "agent", "request": request, "timeout": timeout}, timeout + 15
            )
        except Exception as exc:  # sandbox gone or silent: the student's doing
            self.alive = False
            raise KernelGone("KernelDied: %s" % exc) from None
        if not isinstance(reply, dict) or reply.get("event") != "agent":
            self.alive = False
            raise KernelGone("KernelDied: the sandbox answered out of turn")
        self.alive = bool(reply.get("alive"))
        self._forward(reply.get("outputs"))
        info = reply.get("info") if isinstance(reply.get("info"), dict) else {}
        if info.get("status") == "timeout":
            raise StudentCodeError("Timeout: the student's code ran over %g s" % timeout)
        text = reply.get("reply")
        if type(text) is not str:
            if not self.alive:
                raise KernelGone("KernelDied: the kernel died while answering")
            raise AnswerNotData(
                "the answer could not be read (%s: %s)"
                % (str(info.get("ename", "no reply"))[:80], str(info.get("evalue", ""))[:200])
            )
        try:
            text = ast.literal_eval(text) if len(text) < wire.MAX_BYTES * 3 else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            text = None
        if type(text) is not str:
            raise AnswerNotData("the answer could not be read (reply is not text)")
        return text

    def _forward(self, outputs):
        if not isinstance(outputs, list) or self.sink is None:
            return
        for out in outputs[:100]:
            if isinstance(out, dict) and out.get("output_type") == "stream":
                stream = self.sink[1] if out.get("name") == "stderr" else self.sink[0]
                stream.write(str(out.get("text", ""))[:100_000])

    def _reply(self, text):
        try:
            obj = wire.json.loads(text) if len(text) <= wire.MAX_BYTES * 2 else None
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            raise AnswerNotData("the answer could not be read (malformed reply)")
        return obj

    def get(self, names):
        """{name: value or Remote}; names the kernel does not have are left out."""
        obj = self._reply(self._ask({"op": "get", "names": list(names)}, self.call_timeout))
        values = obj.get("values")
        if not isinstance(values, dict):
            raise AnswerNotData("the answer could not be read (malformed reply)")
        out, problems = {}, {}
        for name in names:
            v = values.get(name)
            if isinstance(v, dict) and ("$missing" in v or "$error" in v):
                if "$error" in v:
                    problems[name] = str(v.get("$error"))[:200]
                continue
            try:
                out[name] = wire.decode(v, self._remote, self.read_sympy)
            except (wire.WireError, ValueError, TypeError, RecursionError, MemoryError) as exc:
                problems[name] = str(exc)[:200]
        return out, problems

    def call(self, request, args, kwargs):
        if args is not None:
            try:
                request["args"] = [wire.encode(a, self._ref) for a in args]
                request["kwargs"] = wire.encode(dict(kwargs), self._ref)
            except wire.WireError as exc:
                raise TypeError(str(exc)) from None
            request["forbid"] = list(self.forbid)
        obj = self._reply(self._ask(request, self.call_timeout))
        if "raise" in obj:
            exc = obj["raise"]
            ename, evalue = (
                (str(exc[0])[:100], str(exc[1])[:2000])
                if isinstance(exc, list) and len(exc) == 2
                else ("Error", "")
            )
            raise _rebuild(ename, evalue)
        try:
            return wire.decode(obj.get("ok"), self._remote, self.read_sympy)
        except (wire.WireError, ValueError, TypeError, RecursionError, MemoryError) as exc:
            raise AnswerNotData("the answer is not data: %s" % exc) from None


_PASSED_THROUGH = {
    "NotImplementedError": NotImplementedError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "IndexError": IndexError,
    "KeyError": KeyError,
    "ZeroDivisionError": ZeroDivisionError,
    "AttributeError": AttributeError,
    "NameError": NameError,
    "AssertionError": AssertionError,
    "FloatingPointError": FloatingPointError,
    "OverflowError": OverflowError,
    "RecursionError": RecursionError,
    "MemoryError": MemoryError,
}


def _rebuild(ename, evalue):
    """The student's exception as an exception of the evaluator (builtin types keep their type,
    so the instructor's `except NotImplementedError` still works; bpkit's check errors too)."""
    if ename == "ReferenceUsed":
        from bpkit.course.checks import ReferenceUsed

        return ReferenceUsed(evalue)
    if ename in ("NotAnswered", "CheckFailed"):
        from bpkit.course import checks

        return getattr(checks, ename)(evalue)
    cls = _PASSED_THROUGH.get(ename)
    if cls is not None:
        return cls(evalue)
    return StudentCodeError("%s: %s" % (ename, evalue))


# ------------------------------------------------------------------------------------------------
# running the instructor cells
# ------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    passed: bool
    ename: str = ""
    evalue: str = ""
    outputs: list = field(default_factory=list)


class _Forbidden:
    """Wraps checks.forbidden in this process: also tells the kernel which functions to guard
    while the student's code runs there."""

    def __init__(self, link, original):
        self.link, self.original = link, original

    @contextlib.contextmanager
    def __call__(self, *functions):
        names = []
        for f in functions:
            f = getattr(f, "__func__", f)
            names.append(
                "%s.%s"
                % (getattr(f, "__module__", "?"), getattr(f, "__qualname__", "?").replace(".", "/"))
            )
        self.link.forbid.extend(names)
        try:
            with self.original(*functions):
                yield
        finally:
            del self.link.forbid[len(self.link.forbid) - len(names) :]


def _render_error(exc, cell_name):
    render = getattr(exc, "_render_traceback_", None)
    if callable(render):
        try:
            lines = [str(x) for x in render()]
        except Exception:
            lines = []
        if lines:
            return lines
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == cell_name]
    lines = ["Traceback (in this test cell):"] if frames else []
    lines += ["  line %d: %s" % (f.lineno, (f.line or "").strip()) for f in frames[-3:]]
    return lines + ["%s: %s" % (type(exc).__name__, exc)]


class Evaluator:
    def __init__(self, source_nb, prepared_nb, driver, settings, read_sympy=None):
        self.steps = plan(source_nb, prepared_nb)
        self.driver, self.settings = driver, settings
        self.link = Link(driver, settings.cell_timeout, read_sympy or _no_sympy)
        self.ns = {"__name__": "__main__", "__builtins__": builtins, "display": _no_display}
        self.verdicts = {}
        self.unreadable = {}

    def run(self, last_test=None):
        """Run the plan; stop after the test cell `last_test` when given (selfcheck's wrong
        answers only need their own exercise's tests)."""
        from bpkit.course import checks

        original = checks.forbidden
        checks.forbidden = _Forbidden(self.link, original)
        try:
            last = 0
            for step in self.steps:
                if step.is_test and step.position is None:
                    continue  # deleted by the student: its points are lost
                if not step.run:
                    continue
                if step.position is not None:
                    last = max(last, step.position)
                self.unreadable = {}
                if step.student and self.link.alive:
                    self._reach(last)
                    self._fetch(step.student)
                if step.is_test and self.unreadable:
                    name, why = next(iter(self.unreadable.items()))
                    msg = "%s: your answer could not be read as data (%s)" % (name, why)
                    self.verdicts[step.grade_id] = Verdict(
                        False,
                        "AnswerNotData",
                        msg,
                        [
                            {
                                "output_type": "error",
                                "ename": "AnswerNotData",
                                "evalue": msg,
                                "traceback": [msg],
                            }
                        ],
                    )
                    continue
                self._execute(step)
                if last_test is not None and step.grade_id == last_test:
                    break
        finally:
            checks.forbidden = original
        return self.verdicts

    def _reach(self, position):
        try:
            reply = self.driver.request(
                {"cmd": "run_until", "index": position}, self.settings.timeout + 30
            )
            if reply.get("event") != "reached":
                raise ValueError("out of turn")
            self.link.alive = bool(reply.get("alive"))
        except Exception:
            self.link.alive = False

    def _fetch(self, names):
        if not self.link.alive:
            for n in names:
                self.ns.pop(n, None)
            return
        try:
            values, problems = self.link.get(names)
        except StudentCodeError as exc:
            values, problems = {}, {n: str(exc) for n in names}
        for n in names:
            if n in values:
                self.ns[n] = values[n]
            else:
                self.ns.pop(n, None)
        self.unreadable = {}
        for n, why in problems.items():
            self.ns[n] = _Unreadable(n, why)
            self.unreadable[n] = why

    def _execute(self, step):
        cell_name = "<cell %s>" % step.grade_id
        out, err = io.StringIO(), io.StringIO()
        self.link.sink = (out, err)
        exc = None
        try:
            code = compile(step.source, cell_name, "exec")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                exec(code, self.ns)
        except BaseException as e:  # noqa: BLE001 (any failure of a test is its verdict)
            if isinstance(e, (SystemExit, KeyboardInterrupt)) and not step.is_test:
                raise
            exc = e
        finally:
            self.link.sink = None
            _close_figures()
        if not step.is_test:
            return
        outputs = []
        if out.getvalue():
            outputs.append(
                {"output_type": "stream", "name": "stdout", "text": out.getvalue()[:100_000]}
            )
        if err.getvalue():
            outputs.append(
                {"output_type": "stream", "name": "stderr", "text": err.getvalue()[:100_000]}
            )
        v = Verdict(passed=exc is None and not err.getvalue(), outputs=outputs)
        if exc is not None:
            v.ename, v.evalue = type(exc).__name__, str(exc)[:2000]
            outputs.append(
                {
                    "output_type": "error",
                    "ename": v.ename,
                    "evalue": v.evalue,
                    "traceback": _render_error(exc, cell_name),
                }
            )
        self.verdicts[step.grade_id] = v


class _Unreadable:
    """Stands for a student value that could not be read as data: any use fails with the reason."""

    def __init__(self, name, why):
        self._why = "%s could not be read as data (%s)" % (name, why)

    def __getattr__(self, name):
        raise AnswerNotData(self._why)

    def __repr__(self):
        return "<unreadable: %s>" % self._why


def _no_sympy(text):
    raise wire.WireError("SymPy answers cannot be read here")


def _no_display(*args, **kwargs):
    return None


def _close_figures():
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
