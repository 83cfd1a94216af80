"""bpkit.symbolic (SymPy derivatives, the SymPy-vs-numeric table) and bpkit.course.answers
(the symbolic-answer checker and the srepr reader).

Expected values come from calculus done by hand (o(1-o), 1 - tanh^2, y - t, 2(d - o)),
centred finite differences, and the seed documents; never from the code under test.
"""

import builtins
import io
import json
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import sympy as sp

import bpkit
from bpkit import symbolic
from bpkit.course import answers
from bpkit.course.answers import check_equivalent, parse_answer, read_srepr
from bpkit.symbolic import DERIVATIVES, LOSS_GRADIENTS

a = sp.Symbol("a")
o = sp.Symbol("o")
POINTS = [-4.0, -2.5, -1.0, -0.3, 0.2, 0.9, 1.7, 3.3]


# ---------------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DERIVATIVES))
def test_sympy_derivative_matches_finite_differences(name):
    d = DERIVATIVES[name]
    g = sp.lambdify(symbolic.a, d.g, "numpy")
    gp = sp.lambdify(symbolic.a, d.g_prime, "numpy")
    h = 1e-6
    for x in POINTS:
        fd = (g(x + h) - g(x - h)) / (2 * h)
        assert abs(float(gp(x)) - fd) < 1e-7, (name, x)


@pytest.mark.parametrize("name", list(DERIVATIVES))
def test_sympy_derivative_matches_bpkit(name):
    d = DERIVATIVES[name]
    act = bpkit.activation(name)
    gp = sp.lambdify(symbolic.a, d.g_prime, "numpy")
    g = sp.lambdify(symbolic.a, d.g, "numpy")
    for x in POINTS + [0.0]:
        assert float(act.g_prime(x)) == pytest.approx(float(gp(x)), rel=1e-12, abs=1e-15)
        assert float(act.g(x)) == pytest.approx(float(g(x)), rel=1e-12, abs=1e-15)


def test_derivatives_have_the_textbook_forms():
    A = symbolic.a
    s = 1 / (1 + sp.exp(-A))
    assert sp.simplify(DERIVATIVES["sigmoid"].g_prime - sp.exp(-A) / (1 + sp.exp(-A)) ** 2) == 0
    assert sp.simplify(DERIVATIVES["sigmoid"].g_prime - s * (1 - s)) == 0  # Betke o(1 - o)
    assert sp.simplify(DERIVATIVES["tanh"].g_prime - (1 - sp.tanh(A) ** 2)) == 0
    assert DERIVATIVES["identity"].g_prime == 1
    relu_p = DERIVATIVES["relu"].g_prime
    assert [relu_p.subs(A, v) for v in (-1, 0, sp.Rational(1, 10**12), 2)] == [
        0,
        0,
        1,
        1,
    ]  # relu'(0) = 0


def test_loss_gradients():
    sse, mse, betke = LOSS_GRADIENTS["sse"], LOSS_GRADIENTS["mse"], LOSS_GRADIENTS["betke"]
    n = sse.Y.rows
    assert sse.gradient == sse.Y - sse.T  # dE/dy = y - t
    assert sp.simplify(mse.gradient - (mse.Y - mse.T) / n) == sp.zeros(*mse.Y.shape)
    assert sp.expand(betke.gradient - 2 * (betke.T - betke.Y)) == sp.zeros(
        *betke.Y.shape
    )  # dP/do = 2(d - o)


def test_sigmoid_prime_max_is_one_quarter_at_zero():
    assert symbolic.sigmoid_prime_max() == (0, sp.Rational(1, 4))


def test_main_agrees_with_bpkit():
    out = io.StringIO()
    assert symbolic.main([], out=out) == 0
    text = out.getvalue()
    assert "all agree" in text and " NO " not in text
    for edge in ("700", "-1000", "1e-12"):
        assert edge in text


@pytest.mark.parametrize(
    "wrong",
    [
        {"sigmoid_prime": lambda x: bpkit.sigmoid(x) * (1 + bpkit.sigmoid(x))},  # o(1+o)
        {"relu_prime": lambda x: np.float64(x >= 0)},  # relu'(0) = 1
        {"tanh_prime": lambda x: 1 - np.tanh(x)},  # missing square
        {"sigmoid": lambda x: 1 / (1 + np.exp(-x))},  # overflows at -1e3: nan/inf
        {"betke": lambda Y, T: tuple(-v for v in bpkit.loss("sse", Y, T))},  # factor 2 missing
        {"mse": lambda Y, T: bpkit.loss("sse", Y, T)},  # 1/N missing
    ],
)
def test_main_exits_nonzero_on_a_wrong_numeric_function(wrong):
    out = io.StringIO()
    assert symbolic.main([], numeric=wrong, out=out) == 1
    assert "DISAGREE" in out.getvalue()
    assert any(
        line.split()[0] == next(iter(wrong)) and line.rstrip().endswith("NO")
        for line in out.getvalue().splitlines()
        if line.strip()
    )


def _modules_after(statement):
    """The bpkit modules a fresh interpreter has loaded after running `statement`."""
    code = f"import json, sys; {statement}; print(json.dumps([m for m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return {m for m in json.loads(out.stdout) if m.startswith("bpkit")}


def test_no_import_cycle_and_the_reference_stays_apart():
    assert not any(m.startswith("bpkit.course") for m in _modules_after("import bpkit.symbolic"))
    loaded = _modules_after("import bpkit.course.answers")
    assert "bpkit.course.checks" not in loaded and "bpkit.symbolic" not in loaded
    assert "bpkit.course.answers" in _modules_after("import bpkit.course.checks")


def test_moved_names_are_still_readable_from_symbolic():
    # 01_chain_rule's betke_symbolic test cell calls bpkit.symbolic.parse_answer
    assert symbolic.parse_answer is answers.parse_answer
    assert symbolic.check_equivalent is answers.check_equivalent
    from bpkit.symbolic import SymbolicResult
    from bpkit.symbolic import check_equivalent as moved

    assert moved is check_equivalent and SymbolicResult is answers.SymbolicResult
    with pytest.raises(AttributeError):
        symbolic.no_such_name  # noqa: B018


def test_module_runs_as_a_program():
    proc = subprocess.run(
        [sys.executable, "-m", "bpkit.symbolic"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr == ""
    assert "sigmoid_prime" in proc.stdout and "all agree" in proc.stdout


# ---------------------------------------------------------------------------------------------
# check_equivalent
# ---------------------------------------------------------------------------------------------

s_a = 1 / (1 + sp.exp(-a))


@pytest.mark.parametrize(
    "answer,expected,variables",
    [
        (o * (1 - o), o - o**2, [o]),
        (o - o**2, o * (1 - o), {o: (0.01, 0.99)}),
        ("o - o**2", o * (1 - o), [o]),
        ("o*(1 - o)", o - o**2, {o: (0.01, 0.99)}),
        (sp.exp(-a) / (1 + sp.exp(-a)) ** 2, s_a * (1 - s_a), [a]),
        ("exp(-a)/(1 + exp(-a))**2", s_a * (1 - s_a), [a]),
        (1 / (2 + 2 * sp.cosh(a)), s_a * (1 - s_a), [a]),
        (sp.Symbol("o", positive=True) * (1 - o), o - o**2, [o]),  # same name, other assumptions
        (sp.Max(0, a), sp.Piecewise((0, a <= 0), (a, True)), [a]),
        (sp.sqrt(o**2), o, {o: (0.1, 1.0)}),  # equal on the stated range
        (sp.Matrix([-11, 1, 15]), sp.Matrix([-11, 1, 15]), []),  # Betke's gradient
        (-11, sp.Integer(-11), []),
        ([-11, 1, 15], sp.Matrix([[-11, 1, 15]]), []),  # list for a row vector
        (o * (1 - o), symbolic.o - symbolic.o**2, [o]),  # expected uses o with real=True
    ],
)
def test_accepts_equal_forms(answer, expected, variables):
    result = check_equivalent(answer, expected, variables)
    assert result.ok, result.message
    assert result.hint is None


@pytest.mark.parametrize(
    "answer,expected,variables",
    [
        (o * (1 + o), o * (1 - o), [o]),
        ("o*(1 + o)", o * (1 - o), {o: (0.01, 0.99)}),
        (s_a, s_a * (1 - s_a), [a]),
        (sp.sqrt(o**2), o, {o: (-1.0, 1.0)}),
        (sp.Heaviside(a), sp.Piecewise((0, a <= 0), (1, True)), {a: (-1, 1)}),  # differ only at 0
        (sp.Heaviside(a), sp.Piecewise((0, a <= 0), (1, True)), [a]),
        (sp.Matrix([-11, 1, 14]), sp.Matrix([-11, 1, 15]), []),
        (o + 1e-4, o, [o]),
    ],
)
def test_rejects_different_forms(answer, expected, variables):
    result = check_equivalent(answer, expected, variables)
    assert not result.ok
    assert "not equal" in result.message


def test_names_the_matching_wrong_form():
    net, t, y = sp.symbols("net t y")
    f = 1 / (1 + sp.exp(-net))
    expected = (t - f) * sp.diff(f, net)  # delta = -dE/dnet (Micheli Case 1)
    wrong = {
        "sign error: this is dE/dnet, Micheli's delta is -dE/dnet": -(t - f) * sp.diff(f, net),
        "missing the chain factor f'(net)": t - f,
        "factor 2: the 1/2 in E cancels the 2 of the square": 2 * (t - f) * sp.diff(f, net),
    }
    for hint, answer in wrong.items():
        result = check_equivalent(answer, expected, [net, t], wrong_forms=wrong)
        assert not result.ok
        assert result.hint == hint
        assert result.message.startswith(hint)
    assert check_equivalent(expected.expand(), expected, [net, t], wrong_forms=wrong).ok


def test_automatic_hints_for_sign_and_factor_two():
    r = check_equivalent(-o * (1 - o), o * (1 - o), [o])
    assert not r.ok and "sign" in r.message
    r = check_equivalent(2 * o * (1 - o), o * (1 - o), [o])
    assert not r.ok and "factor 2" in r.message


@pytest.mark.parametrize(
    "answer,words",
    [
        (None, "not answered"),
        (0.25, "expected an expression in o"),
        (True, "truth value"),
        (lambda x: x, "not a SymPy expression"),
        (sp.Symbol("x") + o, "x, which is not among the variables"),
        ("o + x", "unknown name 'x'"),
        ("o^2", "**"),
        (sp.Matrix([o, o]), "expected a single expression"),
        (sp.Eq(sp.Symbol("d"), o), "not an expression"),
        (sp.Derivative(o**2 / 2, o), ".doit()"),
        (sp.Function("f")(o), "undefined function(s) f"),
    ],
)
def test_non_expressions_get_clear_messages(answer, words):
    result = check_equivalent(answer, o * (1 - o), [o])
    assert not result.ok
    assert words in result.message


def test_points_where_the_expected_is_undefined_are_redrawn():
    # log(o) is undefined for o <= 0, half of the default range (-3, 3)
    assert check_equivalent(sp.log(o**2) / 2, sp.log(o), [o]).ok
    # answer undefined where the expected is defined
    r = check_equivalent(sp.log(o - 5), o, {o: (0.0, 1.0)})
    assert not r.ok and "undefined" in r.message
    t = sp.Symbol("t")
    r = check_equivalent(sp.log(o - 5) * t, o * t, {o: (0.0, 1.0), t: (1.0, 2.0)})  # two variables
    assert not r.ok and "undefined" in r.message and "t=" in r.message
    # undefined at a few points only (removable singularity at o = 0.5): still judged on the rest
    assert check_equivalent((o**2 - o / 2) / (o - sp.Rational(1, 2)) * t, o * t, [o, t]).ok


def test_never_warns_or_writes(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for answer in (
            sp.exp(1000 * o),
            1 / (o - o),
            sp.log(-(o**2) - 1),
            sp.sqrt(-1 - o**2),
            o / 0,
        ):
            check_equivalent(answer, o, [o])
        check_equivalent("exp(800*o)/exp(800*o)", sp.Integer(1), [o])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_simplification_time_is_bounded(monkeypatch):
    def slow(diff):
        time.sleep(20)

    monkeypatch.setattr(answers, "_simplifies_to_zero", slow)
    start = time.monotonic()
    result = check_equivalent(o - o**2, o * (1 - o), [o], timeout=0.3)
    assert time.monotonic() - start < 3
    assert result.ok  # the values agree at every sample point
    assert "timed out" in result.message


def test_outside_the_main_thread_only_the_numeric_test_runs(monkeypatch):
    def never(diff):
        raise AssertionError("simplification must not run without a time limit")

    monkeypatch.setattr(answers, "_simplifies_to_zero", never)
    results = []
    worker = threading.Thread(
        target=lambda: results.append(check_equivalent(o - o**2, o * (1 - o), [o]))
    )
    worker.start()
    worker.join(30)
    assert results and results[0].ok and "skipped" in results[0].message


def test_samples_and_seed_are_used():
    # Heaviside(o - 2.9) differs from 0 only on (2.9, 3): with 1 sample it may pass, with many not
    r = check_equivalent(sp.Heaviside(o - 2.5), sp.Integer(0) * o, [o], samples=200, seed=1)
    assert not r.ok
    with pytest.raises(ValueError):
        check_equivalent(o, o, [o], samples=0)
    with pytest.raises(ValueError):
        check_equivalent(o, o, {o: (1, 0)})


# ---------------------------------------------------------------------------------------------
# parse_answer
# ---------------------------------------------------------------------------------------------


def test_parse_builds_the_expression():
    net, t = sp.symbols("net t")
    got = parse_answer("(t - 1/(1 + exp(-net))) * exp(-net)/(1 + exp(-net))**2", [net, t])
    f = 1 / (1 + sp.exp(-net))
    assert sp.simplify(got - (t - f) * sp.diff(f, net)) == 0
    assert parse_answer("Heaviside(a, 0) + Max(0, a) - Min(a, 1) + Abs(-a)", [a]) == sp.Heaviside(
        a, 0
    ) + sp.Max(0, a) - sp.Min(a, 1) + sp.Abs(a)
    assert parse_answer(
        "-2*o**2 + sqrt(4) + log(o) + sin(o)*cos(o) + tanh(o) + 1.5", {o: (0, 1)}
    ) == -2 * o**2 + 2 + sp.log(o) + sp.sin(o) * sp.cos(o) + sp.tanh(o) + sp.Float(1.5)
    assert parse_answer("10**12 * o", [o]) == 10**12 * o


def test_parse_never_evaluates_text(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(sp, "sympify", refuse)
    assert parse_answer("o*(1 - o)", [o]) == o * (1 - o)


@pytest.mark.parametrize(
    "text,names",
    [
        ("__import__('os')", "__import__"),
        ("__import__('os').system('true')", "Attribute"),
        ("o.real", "Attribute"),
        ("lambda: 1", "Lambda"),
        ("(lambda x: x)(o)", "not allowed"),
        ("open('/etc/passwd')", "open"),
        ("exp.__globals__", "Attribute"),
        ("sympify('o')", "sympify"),
        ("x + 1", "'x'"),
        ("o[0]", "Subscript"),
        ("[o]", "List"),
        ("o if o else 1", "IfExp"),
        ("o ^ 2", "**"),
        ("'o'", "'o'"),
        ("o == 1", "Compare"),
        ("exp(o, 2)", "exp() takes 1"),
        ("exp(x=o)", "plain arguments"),
        ("9**9**9", "too large"),
        ("2**2**2**2**2", "too large"),
        ("2**1000", "too large"),
        ("(2**100)**100", "too large"),
        ("1e300*o", "out of range"),
        ("10**100**100", "too large"),
        ("o o", "cannot read"),
        ("", "empty"),
        ("o" + "+o" * 600, "too long"),
        ("(" * 300 + "o" + ")" * 300, "nested"),
    ],
)
def test_parse_refuses(text, names):
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        parse_answer(text, [o])
    assert names in str(info.value)
    assert time.monotonic() - start < 1


def test_parse_rejects_bad_variables():
    with pytest.raises(ValueError):
        parse_answer("o", [1])
    with pytest.raises(ValueError):
        parse_answer(3, [o])


# ---------------------------------------------------------------------------------------------
# read_srepr
# ---------------------------------------------------------------------------------------------

x, y, z = sp.symbols("x y z")
g = sp.Function("g")
_i = sp.Idx("i", 5)
_A = sp.IndexedBase("A")
_W = sp.IndexedBase("W")

ROUND_TRIPS = [
    x + 1,
    x**2 - x + 1,
    x * y + 2 * x,
    s_a * (1 - s_a),
    sp.exp(-a) / (1 + sp.exp(-a)) ** 2,
    sp.sqrt(x) + 1 / x - sp.Rational(-3, 7) * x ** sp.Rational(3, 2),
    sp.Float(1.5) * x + sp.Float("0.1", 30),
    sp.pi * x + sp.E + sp.I,
    -sp.oo,
    sp.oo + sp.nan * 0,
    sp.zoo,
    sp.Symbol("o", positive=True) * (1 - sp.Symbol("o", positive=True)),
    sp.Symbol("r", real=True, nonzero=True) ** 2,
    sp.Dummy("d") + 1,
    g(a),
    sp.Derivative(g(a), a),  # g'(a)
    sp.Subs(sp.Derivative(g(z), z), z, a),  # g'(a) written as a substitution
    g(2 * a).diff(a),  # 2 Subs(Derivative(g(xi), xi), xi, 2a): a Dummy inside
    sp.Derivative(g(x, y), (x, 2), y),
    sp.Function("f")(a) * sp.Derivative(g(a), a),
    sp.Max(0, x) + sp.Min(x, y, 1) + sp.Abs(x - y),
    sp.Heaviside(x - 1) * sp.tanh(x) * sp.log(x) + sp.sin(x) * sp.cos(x) + sp.log(x, 2),
    sp.Piecewise((0, x <= 0), (x, True)),
    sp.Piecewise((0, x < 0), (1, x > 0), (sp.Rational(1, 2), True)),
    sp.Eq(x, y + 1),
    sp.Ne(x, 1),
    sp.And(x > 0, y < 1, sp.Ge(z, 2)),
    sp.Or(x < 0, x > 1),
    sp.Not(sp.Eq(x, 1)),
    sp.true,
    sp.false,
    sp.Tuple(x, 1, sp.Rational(1, 2)),
    sp.Matrix([[1, x], [y, 2]]),
    sp.ImmutableMatrix([x + 1, -11, 15]),
    sp.Matrix([[-11, 1, 15]]),
    sp.Sum(_A[_i], (_i, 0, 4)),
    sp.Sum(x**z, (z, 1, sp.oo)),
    sp.Indexed(_A, _i) * 2,
    sp.KroneckerDelta(x, y) * x,
    # d/dw_j2 of sum_i w_ji a_i: SymPy answers with a KroneckerDelta inside the Sum
    sp.diff(sp.Sum(_W[z, y] * _A[y], (y, 1, x)), _W[z, 2]),
    sp.Integer(-3),
    sp.Integer(10) ** 300,
]


def _evaluated(e):
    """e rebuilt node by node with evaluation (what read_srepr leaves unevaluated)."""
    if isinstance(e, sp.MatrixBase):
        return e.applyfunc(_evaluated)
    return e.func(*[_evaluated(arg) for arg in e.args]) if e.args else e


@pytest.mark.parametrize("expr", ROUND_TRIPS, ids=lambda e: str(e)[:40])
def test_read_srepr_round_trips(expr):
    text = sp.srepr(expr)
    got = read_srepr(text)
    assert sp.srepr(got) == text
    assert _evaluated(got) == expr
    assert type(got) is type(expr) or isinstance(expr, sp.Basic)


def test_read_srepr_keeps_assumptions_and_dummies():
    o_pos = sp.Symbol("o", positive=True)
    got = read_srepr(sp.srepr(o_pos))
    assert got == o_pos and got.is_positive and got != sp.Symbol("o")
    d = sp.Dummy("d")
    assert read_srepr(sp.srepr(d)) == d  # the same dummy, not a new one
    assert read_srepr("Float('0.1', precision=100)")._prec == 100


def test_read_srepr_results_are_judged_like_the_originals():
    expected = s_a * (1 - s_a)
    for answer in (sp.exp(-a) / (1 + sp.exp(-a)) ** 2, sp.exp(a) / (1 + sp.exp(a)) ** 2):
        assert check_equivalent(read_srepr(sp.srepr(answer)), expected, [a]).ok
    assert not check_equivalent(read_srepr(sp.srepr(s_a)), expected, [a]).ok


def test_read_srepr_never_evaluates_text(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec/sympify called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(sp, "sympify", refuse)
    monkeypatch.setattr(sp, "parse_expr", refuse)
    assert _evaluated(read_srepr(sp.srepr(s_a * (1 - s_a)))) == s_a * (1 - s_a)


HOSTILE = [
    ("__import__('os').system('true')", "Attribute"),
    ("__import__('os')", "'__import__' is not allowed"),
    ("Symbol('x').__class__", "Attribute"),
    ("Symbol.__init__", "Attribute"),
    ("Symbol('x').evalf()", "Attribute"),
    ("lambda: 1", "Lambda"),
    ("(lambda: Symbol('x'))()", "Lambda"),
    ("eval('1')", "'eval' is not allowed"),
    ("sympify('x')", "'sympify' is not allowed"),
    ("getattr(Symbol('x'), 'evalf')", "'getattr' is not allowed"),
    ("Matrix([[Integer(1)]])", "'Matrix' is not allowed"),
    ("x", "'x' is not allowed"),
    ("Symbol", "'Symbol' is not allowed"),
    ("Add(Symbol('x'), '1 + 1')", "string is not allowed"),
    ("Tuple('__import__(\"os\")')", "string is not allowed"),
    ("Subs(Symbol('x'), Tuple(Symbol('x')), Tuple(['os']))", "not allowed"),
    ("Derivative(Symbol('x'), 'x')", "string is not allowed"),
    ("Symbol(__import__('os'))", "'__import__' is not allowed"),
    ("Symbol('x', evaluate=False)", "evaluate= is not allowed"),
    ("Symbol('x', real='yes')", "must be True, False, None or an int"),
    ("Symbol('x', **{'real': True})", "** arguments"),
    ("Add(*[Symbol('x')])", "* and **"),
    ("Function('g')(Symbol('x'))(Symbol('y'))", "only Function('name')(...)"),
    ("Rational(1, 3)(Symbol('x'))", "only Function('name')(...)"),
    ("Integer(10)**Integer(10)", "BinOp"),
    ("Integer(10**9)", "BinOp"),
    ("Symbol('x') if True else 1", "IfExp"),
    ("[Symbol('x')][0]", "Subscript"),
    ("Pow(Integer(10), Integer(1000000000))", "too large"),
    ("Pow(Integer(2), Rational(1000000001, 2))", "too large"),
    ("Pow(Symbol('x'), Integer(1000000000))", "too large"),
    ("Pow(Pow(Integer(2), Integer(1000)), Integer(1000))", "too large"),
    ("Pow(Rational(12345678901234567890, 7), Integer(-1000))", "too large"),
    ("Pow(Pow(Pow(Integer(2), Integer(10)), Integer(1000)), Integer(1000))", "too large"),
    ("Pow(Mul(Symbol('x'), Pow(Integer(2), Integer(100))), Integer(1000))", "too large"),
    ("Float('1e10000000')", "out of range"),
    ("Float('0x1p100')", "not a decimal number"),
    ("Float(" + "9" * 4000 + ")", "out of range"),
    ("Derivative(Function('g')(Symbol('x')), Tuple(Symbol('x'), Integer(1000000000)))", "order"),
    ("Integer(" + "9" * 5000 + ")", "not srepr text"),
    ("Integer(0x" + "f" * 6000 + ")", "too large"),
    ("Integer(True)", "int arguments only"),
    ("Integer('12')", "string is not allowed"),
    ("Float('1e100000')", "out of range"),
    ("Float('1' * 3)", "BinOp"),
    ("Float('1.5', precision=1000000000)", "precision"),
    ("Dummy('d', dummy_index='x')", "must be True, False, None or an int"),
    ("Max(" + ", ".join(f"Symbol('x{i}')" for i in range(20)) + ")", "more than 16"),
    ("Abs(" * 150 + "Symbol('x')" + ")" * 150, "nested"),
    ("Add(" + "Symbol('x'), " * 30000 + ")", "characters long"),
    ("[Integer(1)]", "expected one SymPy expression"),
    ("Function('g')", "expected one SymPy expression"),
    ("Symbol('x'); Symbol('y')", "not srepr text"),
    ("", "not srepr text"),
    ("Symbol('x', integer=True, even=True, odd=True)", "could not be built"),
]


@pytest.mark.parametrize("text,words", HOSTILE, ids=[t[:40] for t, _ in HOSTILE])
def test_read_srepr_refuses(text, words):
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        read_srepr(text)
    assert words in str(info.value)
    assert time.monotonic() - start < 2


def test_read_srepr_refuses_non_text_and_honours_max_len():
    with pytest.raises(ValueError):
        read_srepr(b"Symbol('x')")
    text = sp.srepr(x + y)
    assert read_srepr(text, max_len=len(text)) is not None
    with pytest.raises(ValueError, match="characters long"):
        read_srepr(text, max_len=len(text) - 1)


def test_read_srepr_is_fast_on_large_legal_texts():
    terms = ", ".join(f"Heaviside(Add(Symbol('x'), Integer({i})))" for i in range(2000))
    start = time.monotonic()
    got = read_srepr(f"Add({terms})")
    assert len(got.args) == 2000
    assert time.monotonic() - start < 10  # about 1 s here; evaluated, it took over 20 s
