"""Runs in the student's kernel: answers the evaluator's requests with data (see wire.py).

The driver evaluates ``__import__("bpkit_sandbox.agent", fromlist=["serve"]).serve(REQUEST)`` as
a user expression; the returned JSON text travels back in the execute_reply. Nothing here is
trusted: the student's code runs in this process and may replace any of it. The evaluator only
ever receives data from here, so replacing it can only change the answers, never a verdict.

Requests (JSON text):
    {"op": "get", "names": [...]}                        values of notebook names
    {"op": "call", "id": n, "args": [...], "kwargs": {...}, "forbid": [dotted names]}
    {"op": "getattr", "id": n, "name": "grad"}
    {"op": "method", "id": n, "name": "__mul__", "args": [...], "kwargs": {...}}
Replies: {"ok": value} | {"raise": [ename, evalue]} | {"values": {name: value | {"$missing": 1}
| {"$error": reason}}}.
"""

import contextlib
import json

from . import wire

try:  # imported before any student cell runs: a later patch of checks.forbidden does not reach us
    from bpkit.course.checks import forbidden as _reference_guard
except Exception:  # noqa: BLE001 (a kernel without bpkit: no guard)
    _reference_guard = None
_objects = {}  # handle id -> object kept alive for the evaluator
_ids = {}  # id(object) -> handle id


def _ref(obj):
    key = id(obj)
    if key not in _ids:
        _ids[key] = len(_objects) + 1
        _objects[_ids[key]] = obj
    kind = "function" if _is_function(obj) else "object"
    label = getattr(obj, "__name__", None) or type(obj).__name__
    return {"$": "ref", "id": _ids[key], "kind": kind, "label": str(label)[:80]}


def _is_function(obj):
    import types

    return isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type))


def _remote(ident, kind, label):
    if ident not in _objects:
        raise wire.WireError("unknown object handle %d" % ident)
    return _objects[ident]


def _sympy(text):
    import sympy

    return sympy.sympify(text)  # the evaluator's own data: trusted here


def _decode(obj):
    return wire.decode(obj, _remote, _sympy)


def _result(fn):
    try:
        value = fn()
    except BaseException as exc:  # the student's exception (or our interrupt) is the answer
        return {"raise": [type(exc).__name__, str(exc)[:2000]]}
    try:
        return {"ok": wire.encode(value, _ref)}
    except wire.WireError as exc:
        return {"raise": ["AnswerNotData", str(exc)]}


@contextlib.contextmanager
def _forbidden(names):
    if not names:
        yield
        return
    import importlib

    fns = []
    for dotted in names:
        module, _, attr = dotted.rpartition(".")
        try:
            obj = importlib.import_module(module)
            for part in attr.split("/"):
                obj = getattr(obj, part)
            fns.append(obj)
        except Exception:
            continue
    if _reference_guard is None:
        yield
        return
    with _reference_guard(*fns):
        yield


def serve(request):
    req = json.loads(request)
    op = req.get("op")
    if op == "get":
        from IPython import get_ipython

        ns = get_ipython().user_ns
        values = {}
        for name in req["names"]:
            if name not in ns:
                values[name] = {"$missing": 1}
                continue
            try:
                values[name] = wire.encode(ns[name], _ref)
            except wire.WireError as exc:
                values[name] = {"$error": str(exc)}
            except Exception as exc:
                values[name] = {"$error": "%s: %s" % (type(exc).__name__, str(exc)[:200])}
        reply = {"values": values}
    elif op in ("call", "method"):
        target = _objects[req["id"]]
        if op == "method":
            target = getattr(target, req["name"])
        args = [_decode(a) for a in req.get("args", [])]
        kwargs = _decode(req.get("kwargs", {"$": "dict", "v": []}))
        with _forbidden(req.get("forbid")):
            reply = _result(lambda: target(*args, **kwargs))
    elif op == "getattr":
        target = _objects[req["id"]]
        reply = _result(lambda: getattr(target, req["name"]))
    else:
        reply = {"raise": ["ProtocolError", "unknown op %r" % op]}
    return json.dumps(reply, separators=(",", ":"))
