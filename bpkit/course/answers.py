"""Symbolic answers: read a learner's formula safely and decide whether it equals the expected one.

* ``parse_answer``: a text answer such as ``"o*(1 - o)"`` read through an AST whitelist into a
  SymPy expression; the text is never given to ``eval``, ``sympify`` or ``parse_expr``.
* ``check_equivalent``: is an answer algebraically equal to the expected expression? (random
  points plus a time-bounded SymPy simplification), naming the mistake when it equals a known
  wrong form or is a sign or a factor 2 away (``factor_hint``, shared with the numeric checks).
* ``read_srepr``: rebuild a SymPy expression from ``sympy.srepr`` text sent by another,
  untrusted process (the grader's kernel), again without ``eval``.

bpkit.course.checks imports this module; this module imports nothing from bpkit.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import math
import numbers
import re
import signal
import threading
import warnings
from typing import NamedTuple

import numpy as np
import sympy as sp
from sympy.core.assumptions import _assume_defined

__all__ = [
    "SymbolicResult",
    "check_equivalent",
    "parse_answer",
    "factor_hint",
    "read_srepr",
]


# ----------------------------------------------------------------------------------------------
# The slips a wrong number or expression most often is: a sign and/or a factor 2 away.
# ----------------------------------------------------------------------------------------------

FACTOR_SLIPS = (
    (-1.0, "it is the negative of the expected {noun}: check the sign"),
    (2.0, "it is 2 times the expected {noun}: check the factor 2{note}"),
    (0.5, "it is half the expected {noun}: check the factor 2{note}"),
    (-2.0, "it is -2 times the expected {noun}: check the sign and the factor 2"),
    (-0.5, "it is -1/2 times the expected {noun}: check the sign and the factor 2"),
)


def factor_hint(got, want, close, noun, note=""):
    """The FACTOR_SLIPS message whose factor times want is close(...) to got, else None."""
    for factor, text in FACTOR_SLIPS:
        if close(got, factor * want):
            return text.format(noun=noun, note=note)
    return None


# ----------------------------------------------------------------------------------------------
# Reading a text answer: AST whitelist, the SymPy expression is built from the tree by hand.
# ----------------------------------------------------------------------------------------------

#: functions a text answer may call, with the numbers of arguments they accept
FUNCTIONS = {
    "exp": (sp.exp, (1,)),
    "log": (sp.log, (1, 2)),
    "sqrt": (sp.sqrt, (1,)),
    "sin": (sp.sin, (1,)),
    "cos": (sp.cos, (1,)),
    "tanh": (sp.tanh, (1,)),
    "Abs": (sp.Abs, (1,)),
    "Max": (sp.Max, tuple(range(1, 9))),
    "Min": (sp.Min, tuple(range(1, 9))),
    "Heaviside": (sp.Heaviside, (1, 2)),
}

MAX_TEXT = 2000  # characters in a text answer
MAX_NODES = 500  # AST nodes in a text answer
MAX_LITERAL = 10**12  # largest absolute value of a number literal
MAX_EXPONENT = 100  # largest absolute value of a numeric exponent
MAX_INT_BITS = 4096  # largest exact integer a power of numbers may produce

_BINOPS = {
    ast.Add: lambda x, y: x + y,
    ast.Sub: lambda x, y: x - y,
    ast.Mult: lambda x, y: x * y,
    ast.Div: lambda x, y: x / y,
    ast.Pow: None,  # handled by _power (bounded)
}


def _symbol_map(variables):
    """{name: Symbol} from a list of symbols, a dict {symbol: range}, or names."""
    if isinstance(variables, (sp.Symbol, str)):
        variables = [variables]
    if isinstance(variables, dict):
        variables = list(variables)
    try:
        items = list(variables)
    except TypeError:
        raise ValueError(
            "variables must be a list of SymPy symbols or a dict {symbol: (low, high)}, "
            f"got {type(variables).__name__}"
        ) from None
    out = {}
    for v in items:
        if isinstance(v, str):
            v = sp.Symbol(v)
        if not isinstance(v, sp.Symbol):
            raise ValueError(
                f"variables must be SymPy symbols (or names), got {v!r} of type {type(v).__name__}"
            )
        out[v.name] = v
    return out


def _power(base, exponent):
    """base**exponent, refusing numeric powers that would build enormous numbers."""
    if exponent.is_Number:
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(
                f"exponent {exponent} is too large (at most {MAX_EXPONENT} in absolute value)"
            )
        if base.is_Rational and exponent.is_Integer:
            bits = (abs(int(base.p)).bit_length() + int(base.q).bit_length()) * abs(int(exponent))
            if bits > MAX_INT_BITS:
                raise ValueError(f"the number {base}**{exponent} is too large")
    elif base.is_Number and base != 0 and abs(base) != 1 and not exponent.free_symbols:
        raise ValueError("a number raised to a non-numeric constant power is not accepted")
    return base**exponent


def parse_answer(text, variables):
    """Read a text answer such as ``"o*(1 - o)"`` into a SymPy expression, without ``eval``.

    Allowed: numbers, the declared variable names, ``+ - * / **``, unary minus, parentheses and
    calls to ``exp log sqrt sin cos tanh Abs Max Min Heaviside``. Anything else (attribute
    access, other calls, lambda, subscripts, unknown names, ``^``...) raises ValueError naming it.
    Number literals are bounded by 1e12 and numeric exponents by 100, so ``9**9**9`` is refused
    instead of hanging.

    text: str; variables: list of SymPy symbols (or names), or dict {symbol: (low, high)}.
    Returns a SymPy expression in those symbols.
    """
    if not isinstance(text, str):
        raise ValueError(f"parse_answer expects the answer as a string, got {type(text).__name__}")
    names = _symbol_map(variables)
    if len(text) > MAX_TEXT:
        raise ValueError(
            f"the answer is {len(text)} characters long; at most {MAX_TEXT} are accepted"
        )
    if not text.strip():
        raise ValueError("the answer is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(
            f"cannot read {text!r} as a formula ({exc.msg}); write products with *, powers with **"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ValueError("the answer is nested too deeply to read") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ValueError(f"the answer is too long ({count} parts; at most {MAX_NODES})")

    def build(node):
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{value!r} is not allowed in a formula (only numbers)")
            if not math.isfinite(value) or abs(value) > MAX_LITERAL:
                raise ValueError(
                    f"the number {value!r} is out of range (at most {MAX_LITERAL:.0e})"
                )
            return sp.Integer(value) if isinstance(value, int) else sp.Float(value)
        if isinstance(node, ast.Name):
            if node.id in names:
                return names[node.id]
            if node.id in FUNCTIONS:
                raise ValueError(f"{node.id} is a function: call it like {node.id}(x)")
            known = ", ".join(sorted(names)) or "none"
            raise ValueError(f"unknown name {node.id!r} (the variables are: {known})")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -build(node.operand)
            if isinstance(node.op, ast.UAdd):
                return build(node.operand)
            raise ValueError(f"the operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.BitXor):
                raise ValueError("^ is not a power in Python: write x**2 instead of x^2")
            if type(node.op) not in _BINOPS:
                raise ValueError(
                    f"the operator {type(node.op).__name__} is not allowed (only + - * / **)"
                )
            left, right = build(node.left), build(node.right)
            if isinstance(node.op, ast.Pow):
                return _power(left, right)
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ValueError(
                    f"calling {ast.dump(node.func)[:40]} is not allowed (only "
                    f"{', '.join(FUNCTIONS)})"
                )
            fname = node.func.id
            if fname not in FUNCTIONS:
                raise ValueError(
                    f"the function {fname!r} is not allowed (only {', '.join(FUNCTIONS)})"
                )
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ValueError(f"{fname}() takes plain arguments only")
            func, arities = FUNCTIONS[fname]
            if len(node.args) not in arities:
                raise ValueError(
                    f"{fname}() takes {' or '.join(map(str, arities[:2]))} argument(s), "
                    f"got {len(node.args)}"
                )
            return func(*[build(a) for a in node.args])
        raise ValueError(
            f"{type(node).__name__} is not allowed in a formula "
            "(only numbers, variables, + - * / **, parentheses and "
            f"{', '.join(FUNCTIONS)})"
        )

    try:
        return build(tree)
    except RecursionError:
        raise ValueError("the answer is nested too deeply to read") from None


# ----------------------------------------------------------------------------------------------
# Equivalence of two expressions
# ----------------------------------------------------------------------------------------------


class SymbolicResult(NamedTuple):
    """Outcome of check_equivalent: ok, a message in words, and the matched wrong-form hint."""

    ok: bool
    message: str
    hint: str | None


class _TimedOut(BaseException):
    """Raised by the alarm handler; a BaseException so SymPy's ``except Exception`` lets it through."""


@contextlib.contextmanager
def _time_limit(seconds):
    """Yield True and raise _TimedOut after `seconds` (SIGALRM), or yield False if unavailable."""
    usable = (
        hasattr(signal, "SIGALRM")
        and hasattr(signal, "setitimer")
        and seconds > 0
        and threading.current_thread() is threading.main_thread()
    )
    if usable and signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        usable = False  # someone else's alarm is running: leave it alone
    if not usable:
        yield False
        return

    state = {"active": True}

    def on_alarm(signum, frame):
        if state["active"]:
            raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        yield True
    finally:
        while True:  # an alarm landing inside this cleanup must not skip the rest of it
            try:
                state["active"] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except _TimedOut:
                continue


def _ranges(variables, expected):
    """{Symbol: (low, high)} for the declared variables plus any other symbol of `expected`."""
    if isinstance(variables, dict):
        pairs = list(variables.items())
    else:
        pairs = [(v, None) for v in _symbol_map(variables).values()]
    out = {}
    for sym, rng in pairs:
        if isinstance(sym, str):
            sym = sp.Symbol(sym)
        if not isinstance(sym, sp.Symbol):
            raise ValueError(f"variables must be SymPy symbols, got {sym!r}")
        if rng is None:
            rng = (0.1, 3.0) if sym.is_positive else (-3.0, 3.0)
        try:
            low, high = (float(r) for r in rng)
        except (TypeError, ValueError):
            raise ValueError(
                f"the range of {sym} must be a pair (low, high) of numbers, got {rng!r}"
            ) from None
        if not low < high:
            raise ValueError(f"the range of {sym} must have low < high, got {rng!r}")
        out[sym] = (low, high)
    for sym in sorted(_free_symbols(expected), key=lambda s: s.name):
        if sym.name not in {s.name for s in out}:
            out[sym] = (0.1, 3.0) if sym.is_positive else (-3.0, 3.0)
    return out


def _free_symbols(expr):
    return set(getattr(expr, "free_symbols", set()))


def _as_sympy(value, what):
    """A SymPy expression or matrix from `value`, or (None, message in words)."""
    if isinstance(value, (sp.Basic, sp.MatrixBase)):
        return value, None
    if isinstance(value, bool):
        return None, f"{what} is {value}, a truth value, not an expression"
    if isinstance(value, numbers.Integral):
        return sp.Integer(int(value)), None
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            return None, f"{what} is {value}, not a finite number"
        return sp.Float(float(value)), None
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return _as_sympy(value.tolist(), what)
    if isinstance(value, (list, tuple)):
        try:
            return sp.Matrix(value), None
        except Exception:  # noqa: BLE001 - any failure means "not a vector of expressions"
            return None, f"{what} is a {type(value).__name__} that is not a vector of expressions"
    return None, (
        f"{what} is a {type(value).__name__} ({value!r:.60}), not a SymPy expression; "
        "build it from the exercise's SymPy symbols (an expression, not a function or a number "
        "typed as text)"
    )


def _not_an_expression(expr):
    """Words saying why a SymPy object cannot be compared as an expression, or None."""
    if not isinstance(expr, (sp.Expr, sp.MatrixBase)):
        return (
            f"the answer is a {type(expr).__name__} ({expr}), not an expression; give the "
            "right-hand side only (y rather than Eq(x, y))"
        )
    if expr.atoms(sp.Derivative, sp.Integral, sp.Sum):
        return (
            "the answer still contains an unevaluated derivative, integral or sum: "
            "use sp.diff(...) or call .doit() on it"
        )
    undefined = sorted({str(f.func) for f in expr.atoms(sp.core.function.AppliedUndef)})
    if undefined:
        return f"the answer contains the undefined function(s) {', '.join(undefined)}"
    return None


def _entries(expr):
    """The entries of a matrix as a list, or [expr]."""
    if isinstance(expr, sp.MatrixBase):
        return list(expr)
    return [expr]


def _compile(expr, syms):
    """A function of floats evaluating each entry of expr (NumPy), falling back to evalf."""
    entries = _entries(expr)
    try:
        funcs = [sp.lambdify(syms, e, modules="numpy") for e in entries]
    except Exception:  # noqa: BLE001 - lambdify may not know a function: evaluate with evalf
        funcs = None

    def evaluate(point):
        if funcs is not None:
            try:
                return [complex(f(*[np.float64(p) for p in point])) for f in funcs]
            except Exception:  # noqa: BLE001
                pass
        subs = dict(zip(syms, point))
        return [complex(e.evalf(subs=subs)) for e in entries]

    return evaluate


def _values(evaluate, point):
    """Real values of all entries at point, or None where undefined / complex / not finite."""
    try:
        vals = evaluate(point)
    except Exception:  # noqa: BLE001 - division by zero, overflow, undefined: not usable
        return None
    out = []
    for v in vals:
        if not (math.isfinite(v.real) and math.isfinite(v.imag)):
            return None
        if abs(v.imag) > 1e-9 * max(1.0, abs(v.real)):
            return None
        out.append(v.real)
    return np.array(out)


def _close(a, b, rtol=1e-6, atol=1e-9):
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.maximum(np.abs(a), np.abs(b))))


def _fmt_point(syms, point):
    return ", ".join(f"{s}={p:.3g}" for s, p in zip(syms, point))


def _simplifies_to_zero(diff):
    """True / False / None (unknown) for diff == 0 by SymPy (no time limit here)."""
    entries = _entries(diff)
    verdicts = []
    for d in entries:
        if d == 0 or sp.expand(d) == 0 or sp.cancel(sp.together(d.rewrite(sp.exp))) == 0:
            verdicts.append(True)
            continue
        s = sp.simplify(d)
        if s == 0:
            verdicts.append(True)
            continue
        eq = s.equals(0)
        verdicts.append(eq)
    if all(v is True for v in verdicts):
        return True
    if any(v is False for v in verdicts):
        return False
    return None


def check_equivalent(
    answer, expected, variables, *, wrong_forms=None, timeout=3.0, samples=20, seed=0
):
    """Is `answer` algebraically equal to `expected`? Returns SymbolicResult(ok, message, hint).

    answer: SymPy expression (or Matrix), or a string read with ``parse_answer``; None means not
        answered. Symbols are matched by name, so ``Symbol('o')`` and ``Symbol('o', real=True)``
        are the same variable.
    expected: SymPy expression (or Matrix) in the variables.
    variables: list of symbols (values drawn in (-3, 3), (0.1, 3) for positive symbols) or a dict
        {symbol: (low, high)} giving the range to sample each variable in, e.g. {o: (0.05, 0.95)}.
    wrong_forms: dict {hint message: wrong expression}; an answer equal to one of them is told
        that message (e.g. {"sign error: this is -dE/dnet": ...}).
    timeout: seconds allowed for SymPy's simplification (SIGALRM in the main thread; elsewhere
        only the numeric test is used). samples: number of random points; seed: their seed.

    The answer and expected are evaluated at the origin (when inside the ranges, to catch
    differences at a kink such as ReLU'(0)) and at random points inside the ranges (points
    where either is undefined, complex or not finite are replaced by others); any disagreement
    means "not equal". Agreement everywhere is then confirmed by simplifying the difference.
    Never prints and never warns.
    """
    if answer is None:
        return SymbolicResult(False, "not answered yet (the answer is still None)", None)
    expected_sp, problem = _as_sympy(expected, "the expected value")
    if expected_sp is None:
        raise ValueError(f"check_equivalent: {problem}")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int, got {samples!r}")
    ranges = _ranges(variables, expected_sp)
    syms = list(ranges)
    by_name = {s.name: s for s in syms}
    expected_sp = expected_sp.xreplace({s: by_name[s.name] for s in _free_symbols(expected_sp)})

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if isinstance(answer, str):
            try:
                answer = parse_answer(answer, syms)
            except ValueError as exc:
                return SymbolicResult(False, f"could not read the answer: {exc}", None)
        answer_sp, problem = _as_sympy(answer, "the answer")
        if answer_sp is None:
            return SymbolicResult(False, problem, None)
        problem = _not_an_expression(answer_sp)
        if problem:
            return SymbolicResult(False, problem, None)

        # match symbols by name; report names that are not variables
        stray = sorted(s.name for s in _free_symbols(answer_sp) if s.name not in by_name)
        if stray:
            return SymbolicResult(
                False,
                f"the answer uses {', '.join(stray)}, which "
                f"{'is' if len(stray) == 1 else 'are'} not among the variables "
                f"({', '.join(sorted(by_name))})",
                None,
            )
        answer_sp = answer_sp.xreplace({s: by_name[s.name] for s in _free_symbols(answer_sp)})
        forms = {}
        for msg, form in (wrong_forms or {}).items():
            form_sp, problem = _as_sympy(form, f"the wrong form {msg!r}")
            if form_sp is None:
                raise ValueError(f"check_equivalent: {problem}")
            forms[msg] = form_sp.xreplace(
                {s: by_name[s.name] for s in _free_symbols(form_sp) if s.name in by_name}
            )

        shape = getattr(expected_sp, "shape", None)
        a_shape = getattr(answer_sp, "shape", None)
        if (
            shape
            and a_shape
            and a_shape != shape
            and 1 in shape
            and 1 in a_shape
            and len(answer_sp) == len(expected_sp)
        ):
            answer_sp = answer_sp.reshape(*shape)  # a row vector for a column vector, or back
        if getattr(answer_sp, "shape", None) != shape:
            if shape is None:
                return SymbolicResult(
                    False,
                    f"expected a single expression, got a matrix of shape {answer_sp.shape}",
                    None,
                )
            return SymbolicResult(
                False,
                f"expected a matrix/vector of shape {shape}, got "
                f"{'a single expression' if answer_sp.shape is None else answer_sp.shape}",
                None,
            )
        if not _free_symbols(answer_sp) and _free_symbols(expected_sp) and shape is None:
            hint = (
                "expected an expression in "
                + ", ".join(sorted(s.name for s in _free_symbols(expected_sp)))
                + (
                    f", got the number {float(answer_sp):g}"
                    if answer_sp.is_Number
                    else f", got {answer_sp}"
                )
            )
        else:
            hint = None

        return _decide(answer_sp, expected_sp, forms, ranges, syms, timeout, samples, seed, hint)


def _decide(answer, expected, forms, ranges, syms, timeout, samples, seed, const_note):
    rng = np.random.default_rng(seed)
    f_answer, f_expected = _compile(answer, syms), _compile(expected, syms)
    f_forms = {msg: _compile(form, syms) for msg, form in forms.items()}
    lows = np.array([ranges[s][0] for s in syms])
    highs = np.array([ranges[s][1] for s in syms])

    points, exp_vals, ans_vals = [], [], []
    undefined_answer = None
    # the origin first when it is in range: it is where kinks live (ReLU'(0) = 0, Heaviside(0) = 1/2)
    origin = [np.zeros(len(syms))] if syms and np.all((lows <= 0) & (highs >= 0)) else []
    for _ in range(samples * 10):
        if len(points) >= samples:
            break
        point = origin.pop() if origin else rng.uniform(lows, highs) if syms else np.zeros(0)
        e = _values(f_expected, point)
        if e is None:
            continue
        a = _values(f_answer, point)
        if a is None:
            if undefined_answer is None:
                undefined_answer = point
            continue
        points.append(point)
        exp_vals.append(e)
        ans_vals.append(a)
        if not syms:
            break

    mismatch = next((i for i in range(len(points)) if not _close(ans_vals[i], exp_vals[i])), None)
    enough = len(points) >= max(1, samples // 2) if syms else bool(points)
    if mismatch is None and not enough and undefined_answer is not None:
        reason = (
            f"the answer is undefined (or not a real number) where the expected expression "
            f"is defined, e.g. at {_fmt_point(syms, undefined_answer)}"
        )
        return SymbolicResult(False, reason, None)

    if mismatch is not None:
        point = points[mismatch]
        hint = _wrong_form_hint(f_forms, points, ans_vals)
        if hint is None:
            auto = _automatic_hint(ans_vals, exp_vals)
        else:
            auto = None
        where = f" (at {_fmt_point(syms, point)})" if syms else ""
        val = ans_vals[mismatch]
        shown = f"{val[0]:.6g}" if val.size == 1 else np.array2string(val, precision=4)
        message = f"not equal to the expected expression: your answer gives {shown}{where}, which is not the expected value"
        if const_note:
            message = const_note
        if hint is not None:
            message = f"{hint} ({message})"
        elif auto is not None:
            message = f"{message}; {auto}"
        return SymbolicResult(False, message, hint if hint is not None else auto)

    # numerically equal (or too few usable points): ask SymPy, within the time limit
    verdict, timed_out = None, False
    with _time_limit(timeout) as limited:
        if limited:
            try:
                verdict = _simplifies_to_zero(
                    sp.Matrix(_entries(answer)) - sp.Matrix(_entries(expected))
                )
            except _TimedOut:
                timed_out = True
            except Exception:  # noqa: BLE001 - SymPy failed on this expression: numeric verdict only
                verdict = None

    n = len(points)
    if enough and not syms:
        return SymbolicResult(True, "equal to the expected value", None)
    if enough:
        if verdict is True:
            return SymbolicResult(
                True,
                f"equal to the expected expression (same values at {n} random "
                "points; SymPy simplifies the difference to 0)",
                None,
            )
        if verdict is False:
            # SymPy sees a difference outside the sampled ranges (e.g. Abs(o) against o for
            # o in (0, 1)): the ranges state the domain of the exercise, so the answer stands.
            return SymbolicResult(
                True,
                f"equal to the expected expression on the ranges of the "
                f"variables (same values at {n} random points; SymPy does not "
                "simplify the difference to 0 for every value)",
                None,
            )
        note = (
            f"SymPy simplification timed out after {timeout:g} s"
            if timed_out
            else "SymPy could not confirm it symbolically"
            if limited
            else "SymPy simplification was skipped (no time limit available here)"
        )
        return SymbolicResult(
            True,
            f"equal to the expected expression (same values at {n} random points; {note})",
            None,
        )
    if verdict is True:
        return SymbolicResult(
            True, "equal to the expected expression (SymPy simplifies the difference to 0)", None
        )
    if timed_out:
        return SymbolicResult(
            False,
            f"could not decide: too few points where both expressions are "
            f"defined, and SymPy simplification timed out after {timeout:g} s",
            None,
        )
    return SymbolicResult(
        False,
        "could not confirm that the answer equals the expected expression "
        f"(only {n} usable sample points)",
        None,
    )


def _wrong_form_hint(f_forms, points, ans_vals):
    for msg, f in f_forms.items():
        usable = 0
        for point, a in zip(points, ans_vals):
            w = _values(f, point)
            if w is None:
                continue
            if w.shape != a.shape or not _close(a, w):
                break
            usable += 1
        else:
            if usable >= max(1, len(points) // 2):
                return msg
    return None


def _automatic_hint(ans_vals, exp_vals):
    a, e = np.array(ans_vals), np.array(exp_vals)
    if not np.any(np.abs(e) > 1e-12):
        return None
    return factor_hint(a, e, _close, "expression")


# ----------------------------------------------------------------------------------------------
# Reading sympy.srepr text from an untrusted process
# ----------------------------------------------------------------------------------------------

#: constructors read_srepr may call, by the name srepr prints
SREPR_CALLS = {
    "Symbol": sp.Symbol,
    "Dummy": sp.Dummy,
    "Function": sp.Function,
    "Integer": sp.Integer,
    "Rational": sp.Rational,
    "Float": sp.Float,
    "Add": sp.Add,
    "Mul": sp.Mul,
    "Pow": sp.Pow,
    "Derivative": sp.Derivative,
    "Subs": sp.Subs,
    "Tuple": sp.Tuple,
    "exp": sp.exp,
    "log": sp.log,
    "sin": sp.sin,
    "cos": sp.cos,
    "tanh": sp.tanh,
    "Max": sp.Max,
    "Min": sp.Min,
    "Abs": sp.Abs,
    "Heaviside": sp.Heaviside,
    "Piecewise": sp.Piecewise,
    "ExprCondPair": sp.functions.elementary.piecewise.ExprCondPair,
    "Equality": sp.Eq,
    "Unequality": sp.Ne,
    "StrictLessThan": sp.Lt,
    "StrictGreaterThan": sp.Gt,
    "LessThan": sp.Le,
    "GreaterThan": sp.Ge,
    "Eq": sp.Eq,
    "Ne": sp.Ne,
    "Lt": sp.Lt,
    "Gt": sp.Gt,
    "Le": sp.Le,
    "Ge": sp.Ge,
    "And": sp.And,
    "Or": sp.Or,
    "Not": sp.Not,
    "ImmutableDenseMatrix": sp.ImmutableDenseMatrix,
    "MutableDenseMatrix": sp.MutableDenseMatrix,
    "Sum": sp.Sum,
    "Indexed": sp.Indexed,
    "IndexedBase": sp.IndexedBase,
    "Idx": sp.Idx,
    "KroneckerDelta": sp.KroneckerDelta,  # what sp.diff of an indexed Sum gives
}

#: names srepr prints bare: the constants
SREPR_CONSTANTS = {
    "pi": sp.pi,
    "E": sp.E,
    "I": sp.I,
    "oo": sp.oo,
    "nan": sp.nan,
    "zoo": sp.zoo,
    "true": sp.true,
    "false": sp.false,
}

# What a call may receive besides built SymPy objects and numbers:
_NAME_FIRST = {"Symbol", "Dummy", "Function", "Float"}  # a str (name, digits) as first argument
_ASSUMPTIONS = frozenset(_assume_defined)  # real, positive, integer, commutative, ...
_KEYWORDS = {
    "Symbol": _ASSUMPTIONS,
    "Dummy": _ASSUMPTIONS | {"dummy_index"},
    "Function": _ASSUMPTIONS,
    "Float": {"precision"},
}
# Built with evaluate=False: construction stays linear in the size of the text (evaluating,
# Max of 50 symbols took 4.5 s and an Add of 400 Heaviside(x + i) 3 s).
_UNEVALUATED = {
    "Add", "Mul", "Pow", "exp", "log", "sin", "cos", "tanh", "Max", "Min", "Abs", "Heaviside",
    "Piecewise", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan",
    "GreaterThan", "Eq", "Ne", "Lt", "Gt", "Le", "Ge", "And", "Or", "Not", "Function(...)",
}  # fmt: skip
SREPR_MAX_DEPTH = 100  # nested calls
SREPR_MAX_NODES = 50_000  # AST nodes
SREPR_MAX_INT_BITS = 20_000  # an int literal, or a number raised to a numeric power
SREPR_MAX_EXPONENT = 1000  # |numeric exponent| of any power, order of a derivative
SREPR_MAX_ARGS = 16  # arguments of Max, Min, And, Or (their constructors are quadratic or worse)
SREPR_MAX_PRECISION = 1000  # bits of a Float
SREPR_MAX_FLOAT_EXP = 4000  # |binary exponent| of a Float (sin(1e100000) needs 330k bits of pi)


def read_srepr(text, max_len=100_000):
    """The SymPy object whose ``sympy.srepr`` is `text`, rebuilt without eval or sympify.

    The text is parsed with ``ast`` and only these are accepted: calls of the constructors in
    SREPR_CALLS by name (and ``Function('g')(...)`` for an applied undefined function), the
    constants in SREPR_CONSTANTS, int/float/bool literals, a str literal as the first argument
    of Symbol, Dummy, Function (the name) and Float (the digits), lists and tuples of those (a
    matrix's rows), unary minus on a number or constant (``-oo``), and keyword literals for
    assumptions (``real=True``), ``precision`` (Float) and ``dummy_index`` (Dummy). Sizes are
    capped (text length, nesting depth, syntax nodes, int size, numeric exponents and orders of
    derivatives, arguments of Max/Min/And/Or, Float precision and range), so
    ``Pow(Integer(10), Integer(10**9))`` is refused instead of hanging.

    Operations and functions are built with ``evaluate=False``, so reading takes time linear in
    the text and nothing is computed. The result has the same srepr as the original, but an Add
    may hold its terms in another order, so ``==`` with the original can be False: compare with
    ``check_equivalent`` (which also bounds the time SymPy may spend). Rebuilding each node with
    evaluation, ``e.func(*e.args)`` from the leaves up, gives an expression ``==`` the original.

    Returns a SymPy expression (sp.Basic) or matrix; raises ValueError saying what was refused.
    """
    if not isinstance(text, str):
        raise ValueError(f"read_srepr expects a str, got {type(text).__name__}")
    if len(text) > max_len:
        raise ValueError(f"the text is {len(text)} characters long; at most {max_len} are accepted")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"not srepr text: {getattr(exc, 'msg', exc)}") from None
    except (RecursionError, MemoryError):
        raise ValueError("not srepr text: nested too deeply") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > SREPR_MAX_NODES:
        raise ValueError(f"too large: {count} syntax nodes (at most {SREPR_MAX_NODES})")
    try:
        result = _srepr_build(tree.body, 0)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(result, (sp.Basic, sp.MatrixBase)):
        raise ValueError(f"expected one SymPy expression, got a {type(result).__name__}")
    return result


def _srepr_literal(node, depth):
    """A literal, a constant, a built object, or a list/tuple of those (no str)."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if value.bit_length() > SREPR_MAX_INT_BITS:
                raise ValueError(f"an integer of {value.bit_length()} bits is too large")
            return value
        if isinstance(value, float):
            return value
        raise ValueError(f"the literal {value!r:.40} is not allowed here")
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_srepr_build(e, depth + 1) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    return _srepr_build(node, depth)


def _srepr_build(node, depth):
    if depth > SREPR_MAX_DEPTH:
        raise ValueError(f"nested more than {SREPR_MAX_DEPTH} levels deep")
    if isinstance(node, ast.Name):
        if node.id in SREPR_CONSTANTS:
            return SREPR_CONSTANTS[node.id]
        raise ValueError(f"the name {node.id!r} is not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = node.operand
        if not (
            isinstance(inner, ast.Name)
            or (isinstance(inner, ast.Constant) and type(inner.value) in (int, float))
        ):
            raise ValueError("a unary minus is allowed only before a number or a constant")
        value = _srepr_literal(inner, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Constant, ast.List, ast.Tuple)):
        return _srepr_literal(node, depth)
    if not isinstance(node, ast.Call):
        raise ValueError(f"{type(node).__name__} is not allowed (only constructor calls)")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(
        k.arg is None for k in node.keywords
    ):
        raise ValueError("* and ** arguments are not allowed")
    func = node.func
    if isinstance(func, ast.Call):  # Function('g')(args): an applied undefined function
        if not (isinstance(func.func, ast.Name) and func.func.id == "Function"):
            raise ValueError("only Function('name')(...) may be called on a call")
        callee = _srepr_build(func, depth + 1)
        return _srepr_apply(callee, "Function(...)", node, depth)
    if not isinstance(func, ast.Name):
        raise ValueError(f"calling {type(func).__name__} is not allowed (only constructor names)")
    name = func.id
    if name not in SREPR_CALLS:
        raise ValueError(f"the constructor {name!r} is not allowed")
    return _srepr_apply(SREPR_CALLS[name], name, node, depth)


def _srepr_apply(constructor, name, node, depth):
    """constructor(*args, **kwargs) for a checked call node."""
    args = []
    for i, arg in enumerate(node.args):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if not (i == 0 and name in _NAME_FIRST):
                raise ValueError(f"a string is not allowed as argument {i + 1} of {name}")
            args.append(arg.value)
        else:
            args.append(_srepr_literal(arg, depth + 1))
    kwargs = {}
    allowed = _KEYWORDS.get(name, ())
    for k in node.keywords:
        if k.arg not in allowed:
            raise ValueError(f"the keyword {k.arg}= is not allowed in {name}")
        value, sign = k.value, 1
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            value, sign = value.operand, -1  # dummy_index=-869...
        if not isinstance(value, ast.Constant) or (
            type(value.value) is not int and (sign < 0 or value.value not in (True, False, None))
        ):
            raise ValueError(f"{k.arg}= must be True, False, None or an int")
        kwargs[k.arg] = sign * value.value if sign < 0 else value.value
    _srepr_guard(name, args, kwargs)
    if name in _UNEVALUATED:
        kwargs["evaluate"] = False
    try:
        result = constructor(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - SymPy refused the arguments: say so in words
        raise ValueError(f"{name}(...) could not be built: {type(exc).__name__}: {exc}") from None
    if isinstance(result, sp.Float):
        mpf = result._mpf_
        if mpf[1] and abs(mpf[2] + mpf[3]) > SREPR_MAX_FLOAT_EXP:
            raise ValueError(f"a Float beyond 2**{SREPR_MAX_FLOAT_EXP} in size is out of range")
    return result


def _srepr_guard(name, args, kwargs):
    """Refuse arguments whose construction would take too long or too much memory."""
    if name == "Float":
        precision = kwargs.get("precision", 53)
        if not isinstance(precision, int) or not 1 <= precision <= SREPR_MAX_PRECISION:
            raise ValueError(f"Float precision must be 1 .. {SREPR_MAX_PRECISION} bits")
        if args and isinstance(args[0], str):
            _float_text(args[0])
    if name in ("Max", "Min", "And", "Or") and len(args) > SREPR_MAX_ARGS:
        raise ValueError(f"{name} of more than {SREPR_MAX_ARGS} arguments is not accepted")
    if name == "Derivative":
        for v in args[1:]:
            if isinstance(v, sp.Tuple) and len(v) == 2 and v[1].is_Number:
                if abs(v[1]) > SREPR_MAX_EXPONENT:
                    raise ValueError(f"a derivative of order {str(v[1])[:30]} is not accepted")
    if name in ("Integer", "Rational") and not all(
        isinstance(a, int) and not isinstance(a, bool) for a in args
    ):
        raise ValueError(f"{name} takes int arguments only")
    if name == "Pow" and len(args) == 2:
        base, exponent = (_number_or_expr(a) for a in args)
        if base is None or exponent is None:
            return  # not expressions: the constructor refuses them
        if exponent.is_Number and exponent.is_finite:
            if abs(exponent) > SREPR_MAX_EXPONENT:
                raise ValueError(
                    f"the exponent {str(exponent)[:30]} is too large "
                    f"(at most {SREPR_MAX_EXPONENT} in absolute value)"
                )
            if _bits(base) * math.ceil(abs(exponent)) > SREPR_MAX_INT_BITS:
                raise ValueError(
                    "the power is too large: evaluated, it would hold a number of more than "
                    f"{SREPR_MAX_INT_BITS} bits"
                )


def _number_or_expr(value):
    """value as a SymPy object when it is one or a plain number, else None."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return sp.Integer(value)
    if isinstance(value, float):
        return sp.Float(value)
    return None


_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(?:e([+-]?\d+))?", re.IGNORECASE)


def _float_text(text):
    """Refuse Float digits that would be slow to convert (Float('1e100000') takes seconds)."""
    if text.strip().lower().lstrip("+-") in ("inf", "nan"):
        return
    match = _FLOAT_TEXT.fullmatch(text.strip())
    if not match:
        raise ValueError(f"the Float digits {text[:30]!r} are not a decimal number")
    digits, exponent = match.group(1), (match.group(2) or "0").lstrip("+-")
    # 10**e holds about 3.3 e bits; the built Float is checked against SREPR_MAX_FLOAT_EXP too
    too_big = len(exponent) > 6 or int(exponent) > SREPR_MAX_FLOAT_EXP // 3
    if too_big or len(digits) > SREPR_MAX_PRECISION:
        raise ValueError(f"the Float {text[:30]!r} is out of range")


@functools.lru_cache(maxsize=4096)
def _bits(expr):
    """About how many bits the exact number expr would hold once evaluated (1 for a symbol)."""
    if expr.is_Rational:
        return abs(int(expr.p)).bit_length() + int(expr.q).bit_length()
    if expr.is_Pow and expr.exp.is_Number and expr.exp.is_finite:
        return _bits(expr.base) * max(1, math.ceil(abs(expr.exp)))
    if expr.args:
        return sum(_bits(arg) for arg in expr.args if isinstance(arg, sp.Basic))
    return 1
