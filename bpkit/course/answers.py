"""Symbolic answers: read a learner's formula safely and decide whether it equals the expected one.

* ``parse_answer``: a text answer such as ``"o*(1 - o)"`` read through an AST whitelist into a
  SymPy expression; the text is never given to ``eval``, ``sympify`` or ``parse_expr``.
* ``check_equivalent``: is an answer algebraically equal to the expected expression? (random
  points plus a time-bounded SymPy simplification), naming the mistake when it equals a known
  wrong form or is a sign or a factor 2 away (``factor_hint``, shared with the numeric checks).

bpkit.course.checks imports this module; this module imports nothing from bpkit.
"""

from __future__ import annotations

import ast
import contextlib
import math
import numbers
import signal
import threading
import warnings
from typing import NamedTuple

import numpy as np
import sympy as sp

__all__ = [
    "SymbolicResult",
    "check_equivalent",
    "parse_answer",
    "factor_hint",
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
        "build it from the SymPy symbols, e.g. o*(1 - o)"
    )


def _not_an_expression(expr):
    """Words saying why a SymPy object cannot be compared as an expression, or None."""
    if not isinstance(expr, (sp.Expr, sp.MatrixBase)):
        return (
            f"the answer is a {type(expr).__name__} ({expr}), not an expression; give the "
            "right-hand side only, e.g. o*(1 - o) rather than Eq(d, o*(1 - o))"
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
