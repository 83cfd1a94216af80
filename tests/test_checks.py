"""bpkit.course.checks: the functions every notebook test cell calls."""

import warnings

import numpy as np
import pytest
import sympy as sp

import bpkit
from bpkit.course import checks
from bpkit.course.checks import NotAnswered, ReferenceUsed


@pytest.fixture(autouse=True)
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def fails(fn, *args, **kwargs):
    """The AssertionError raised by fn (the test fails if none is raised)."""
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return info.value


# ------------------------------------------------------------------------------------ numbers


def test_check_number_passes_with_one_line(capsys):
    checks.check_number("dP_dw1", -11, -11)  # Betke: grad P = (-11, 1, 15)
    checks.check_number("dP_dw1", np.float64(-11.0000000001), -11)
    checks.check_number("dP_dw1", sp.Integer(-11), -11)
    checks.check_number("dP_dw1", np.array([-11.0]), -11)
    out, err = capsys.readouterr()
    assert out == "dP_dw1: passed\n" * 4 and err == ""


def test_check_number_failures():
    assert str(fails(checks.check_number, "dP_dw1", -10, -11)).startswith("dP_dw1: got -10")
    e = fails(
        checks.check_number,
        "dP_dw1",
        11,
        -11,
        hints=[(11, "sign error: P is maximised, go uphill")],
    )
    assert str(e) == "dP_dw1: sign error: P is maximised, go uphill (got 11)"
    assert "sign" in str(fails(checks.check_number, "x", 11, -11))
    assert "factor 2" in str(fails(checks.check_number, "E", 144, 72))  # Laux: E = 72
    assert "string" in str(fails(checks.check_number, "x", "-11", -11))
    assert "contains w" in str(fails(checks.check_number, "x", sp.Symbol("w"), -11))
    assert "nan" in str(fails(checks.check_number, "x", float("nan"), -11))
    assert "single number" in str(fails(checks.check_number, "x", [1, 2], -11))
    assert "truth value" in str(fails(checks.check_number, "x", True, 1))


def test_check_number_not_answered():
    with pytest.raises(NotAnswered, match="^dP_dw1: not answered"):
        checks.check_number("dP_dw1", None, -11)
    assert issubclass(NotAnswered, AssertionError) and issubclass(ReferenceUsed, AssertionError)


def test_check_number_tolerance_and_validation():
    checks.check_number("x", 1.001, 1.0, rtol=1e-2)
    fails(checks.check_number, "x", 1.001, 1.0)
    with pytest.raises(ValueError):
        checks.check_number("", 1, 1)
    with pytest.raises(ValueError):
        checks.check_number("x", 1, None)
    with pytest.raises(ValueError):
        checks.check_number("x", 1, 1, rtol=-1)


# ------------------------------------------------------------------------------------- arrays

W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def test_check_array_passes(capsys):
    checks.check_array("dW", W.copy(), W)
    checks.check_array("dW", W.tolist(), W)
    checks.check_array("dW", sp.Matrix(W.tolist()), W)
    checks.check_array("grad", sp.Matrix([-11, 1, 15]), np.array([-11.0, 1.0, 15.0]))
    checks.check_array(
        "grad",
        np.array([sp.Integer(-11), sp.Integer(1), sp.Integer(15)], dtype=object),
        [-11, 1, 15],
    )
    assert capsys.readouterr() == ("dW: passed\n" * 3 + "grad: passed\n" * 2, "")


def test_check_array_shapes():
    e = str(fails(checks.check_array, "dW", W.T, W))
    assert e.startswith("dW: expected shape (2, 3), got shape (3, 2)") and "looks transposed" in e
    e = str(fails(checks.check_array, "db", W[:, :1], W[:, 0]))
    assert "(2,)" in e and "(2, 1)" in e and "transposed" not in e
    assert "(3,)" in str(fails(checks.check_array, "v", np.ones(3), np.ones(4)))
    assert "different lengths" in str(fails(checks.check_array, "v", [[1, 2], [3]], W))


def test_check_array_values_and_hints():
    wrong = W.copy()
    wrong[1, 2] = 0
    e = str(fails(checks.check_array, "dW", wrong, W))
    assert e.startswith("dW: 1 of 6 entries differ") and "(1, 2)" in e
    e = str(
        fails(checks.check_array, "dW", W / 2, W, hints=[(W / 2, "missing the factor 2? (or 1/N)")])
    )
    assert e == "dW: missing the factor 2? (or 1/N)"
    assert "sign" in str(fails(checks.check_array, "dW", -W, W))
    square = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert "transpose" in str(fails(checks.check_array, "M", square.T, square))
    assert "nan" in str(fails(checks.check_array, "M", square * np.nan, square))
    assert "complex" in str(fails(checks.check_array, "M", square + 1j, square))


def test_check_array_not_answered():
    for stub in (None, [None, None, None], np.array([1.0, None, 2.0], dtype=object)):
        with pytest.raises(NotAnswered, match="^grad: not answered"):
            checks.check_array("grad", stub, [-11, 1, 15])


# --------------------------------------------------------------------------------- expressions


def test_check_expr(capsys):
    o = sp.Symbol("o")
    checks.check_expr("sigmoid_prime", o - o**2, o * (1 - o), {o: (0.01, 0.99)})
    assert capsys.readouterr().out == "sigmoid_prime: passed\n"
    e = str(
        fails(
            checks.check_expr,
            "sigmoid_prime",
            o * (1 + o),
            o * (1 - o),
            [o],
            wrong_forms={"o(1+o) instead of o(1-o)": o * (1 + o)},
        )
    )
    assert e.startswith("sigmoid_prime: o(1+o) instead of o(1-o)")
    assert "unknown name" in str(fails(checks.check_expr, "s", "x*(1-x)", o * (1 - o), [o]))
    with pytest.raises(NotAnswered):
        checks.check_expr("s", None, o, [o])


# ---------------------------------------------------------------------------------- gradients


def test_check_gradient(capsys):
    x = np.array([0.5, -1.5, 2.0])
    f = lambda: float(np.sum(np.sin(x) * x))  # noqa: E731
    right = np.sin(x) + x * np.cos(x)  # by hand
    checks.check_gradient("grad_f", f, x, right)
    assert capsys.readouterr().out == "grad_f: passed\n"
    e = str(fails(checks.check_gradient, "grad_f", f, x, np.sin(x)))
    assert e.startswith("grad_f: the gradient differs") and "relative error" in e
    assert "sign" in str(fails(checks.check_gradient, "grad_f", f, x, -right))
    assert "shape" in str(fails(checks.check_gradient, "grad_f", f, x, right[:2]))
    with pytest.raises(NotAnswered):
        checks.check_gradient("grad_f", f, x, None)

    def stub():
        raise NotImplementedError()

    with pytest.raises(NotAnswered):
        checks.check_gradient("grad_f", stub, x, right)
    with pytest.raises(ValueError):
        checks.check_gradient("grad_f", f, [1, 2], right)
    assert np.array_equal(x, [0.5, -1.5, 2.0])  # restored after the differences


# -------------------------------------------------------------------------------------- call


def test_call():
    assert checks.call("double", lambda v, k=1: v * 2 * k, 3, k=2) == 12

    def stub(v):
        raise NotImplementedError()

    with pytest.raises(NotAnswered, match="^double: not answered yet .*stub"):
        checks.call("double", stub, 3)
    with pytest.raises(NotAnswered):
        checks.call("double", None, 3)
    with pytest.raises(ValueError, match="ValueError inside"):
        checks.call("double", lambda: (_ for _ in ()).throw(ValueError("ValueError inside")))


# --------------------------------------------------------------------------------- forbidden


def _dense_args():
    rng = np.random.default_rng(0)
    X, W_, b = rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    A, Y = bpkit.dense_forward(X, W_, b, "sigmoid")
    return (np.ones_like(Y), X, W_, A, "sigmoid")


def test_forbidden_catches_aliases_and_restores():
    from bpkit import dense_backward as alias
    from bpkit.layers import dense_backward as alias2

    args = _dense_args()
    before = alias(*args)
    with checks.forbidden(bpkit.dense_backward):
        for fn in (alias, alias2, bpkit.dense_backward):
            with pytest.raises(ReferenceUsed) as info:
                fn(*args)
            assert "bpkit.layers.dense_backward" in str(info.value)
            assert "reference implementation this exercise asks you to write" in str(info.value)
        assert np.allclose(
            bpkit.dense_forward(args[1], args[2], np.zeros(2), "relu")[0], args[1] @ args[2].T
        )  # others still work
    after = alias(*args)
    for u, v in zip(before, after):
        assert np.array_equal(u, v)


def test_forbidden_restores_after_an_error_and_nests():
    args = _dense_args()
    original = bpkit.dense_backward.__code__
    with pytest.raises(KeyError):
        with checks.forbidden(bpkit.dense_backward, bpkit.sigmoid_prime):
            raise KeyError("boom")
    assert bpkit.dense_backward.__code__ is original
    with checks.forbidden(bpkit.sigmoid_prime):
        with checks.forbidden(bpkit.dense_backward, bpkit.sigmoid_prime):
            with pytest.raises(ReferenceUsed):
                bpkit.dense_backward(*args)
        with pytest.raises(ReferenceUsed):
            bpkit.sigmoid_prime(0.0)
        bpkit.dense_forward(args[1], args[2], np.zeros(2), "relu")  # dense_backward is back
        bpkit.dense_backward(*_dense_args()[:1], args[1], args[2], args[3], "relu")
    assert bpkit.sigmoid_prime(0.0) == 0.25


def test_forbidden_methods_and_validation():
    net = bpkit.MLP([2, 3, 1], ["sigmoid", "identity"], seed=0)
    X, T = np.ones((2, 2)), np.zeros((2, 1))
    with checks.forbidden(bpkit.MLP.backprop):
        with pytest.raises(ReferenceUsed, match="MLP.backprop"):
            net.backprop(X, T)
    net.backprop(X, T)
    with pytest.raises(ValueError):
        with checks.forbidden(len):
            pass
    with pytest.raises(ValueError):
        with checks.forbidden("dense_backward"):
            pass


# ---------------------------------------------------------------------------------- fallback


def test_fallback_prints_the_note_once(capsys):
    def student(v):
        raise NotImplementedError()

    f = checks.fallback(student, lambda v: 2 * v, "double")
    assert [f(1), f(2), f(3)] == [2, 4, 6]
    out, err = capsys.readouterr()
    assert (
        out
        == (
            "note: double is not implemented yet; using the reference implementation so "
            "the rest of the notebook runs\n"
        )
        and err == ""
    )


def test_fallback_uses_the_student_function_when_written(capsys):
    f = checks.fallback(lambda v: 3 * v, lambda v: 2 * v, "double")
    assert f(1) == 3 and capsys.readouterr().out == ""
    g = checks.fallback(None, lambda v: 2 * v, "double")
    assert g(5) == 10 and "note: double" in capsys.readouterr().out
    with pytest.raises(ValueError):
        checks.fallback(lambda v: v, None, "double")


def test_fallback_lets_other_errors_through():
    def student(v):
        raise ZeroDivisionError()

    f = checks.fallback(student, lambda v: v, "x")
    with pytest.raises(ZeroDivisionError):
        f(1)


def test_sealed_values_round_trip_and_hide_the_answer():
    text = checks.seal([[1.5, -2.0], [0.25, 72.0]])
    assert "72" not in text and "1.5" not in text
    assert checks.sealed(text) == [[1.5, -2.0], [0.25, 72.0]]
    checks.check_number("E", 72.0, checks.sealed(checks.seal(72.0)))
    with pytest.raises(ValueError, match="checks.seal"):
        checks.sealed("72.0")


def test_stub_function_returning_none_is_not_answered():
    def stub(x):
        """A stub whose body is not written yet."""

    with pytest.raises(NotAnswered, match="returns None"):
        checks.call("f", stub, 1.0)
    wrapped = checks.fallback(stub, lambda x: 2 * x, "f")
    assert wrapped(3.0) == 6.0 and wrapped.uses_reference()


def test_failures_render_as_one_line_in_ipython():
    try:
        checks.check_number("E", 144.0, 72.0, hints=[(144.0, "the factor 1/2 is missing")])
    except checks.CheckFailed as exc:
        lines = exc._render_traceback_()
    assert len(lines) == 1 and "E: the factor 1/2 is missing" in lines[0]


def test_flat_concatenates_nested_results_in_order():
    got = checks.flat((1.5, [np.array([[2, 3]]), np.zeros(0)], (np.array([4.0]),)))
    assert got.dtype == float and got.tolist() == [1.5, 2.0, 3.0, 4.0]
    assert checks.flat([]).shape == (0,)


def test_student_or_reference_keeps_only_a_right_answer(capsys):
    def reference(v):
        return 2 * v, [3 * v]

    right = lambda v: (2.0 * v, [3.0 * v])  # noqa: E731
    assert checks.student_or_reference("f", right, reference, np.arange(3.0)) is right
    assert capsys.readouterr().out == ""
    for student in (lambda v: (2 * v, [3 * v + 1e-3]), lambda v: None, None, lambda v: 1 / 0):
        assert checks.student_or_reference("f", student, reference, np.arange(3.0)) is reference
        assert "note: your f is missing or does not pass its check yet" in capsys.readouterr().out


def test_sealed_expr_reads_names_as_symbols():
    import sympy as sp

    a, o_2, d_1 = sp.symbols("a o_2 d_1")
    for expr in (o_2 * (1 - o_2) * d_1, sp.exp(-a) + sp.sqrt(a) * sp.tanh(a), sp.Max(0, a)):
        got = checks.sealed_expr(checks.seal(str(expr)))
        assert got == expr and "bpk1:" not in str(got)
