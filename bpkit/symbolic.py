"""SymPy verification of bpkit's derivatives.

* ``DERIVATIVES`` and ``LOSS_GRADIENTS``: the derivatives of the activations (sigmoid, ReLU,
  tanh, identity) and the output-layer gradients of the objectives (SSE, MSE, Betke's P),
  each derived by ``sympy.diff`` rather than typed in.
* ``python -m bpkit.symbolic`` (``main``): prints a table comparing each SymPy derivative with
  bpkit's numeric one at many points, edge values included, and the symbolic identities
  (g' in terms of o, relu'(0) = 0, max sigmoid' = 1/4, dMSE = dSSE / N, dP = -2 dSSE); exits
  non-zero on any disagreement.

The checker for learners' symbolic answers is bpkit.course.answers (course support, apart from
the reference). ``check_equivalent``, ``parse_answer`` and ``SymbolicResult`` are still readable
here for notebooks written before the move; they are loaded from there on first use, so
importing this module does not import bpkit.course.
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import NamedTuple

import numpy as np
import sympy as sp

__all__ = [
    "Derivative",
    "DERIVATIVES",
    "LossGradient",
    "LOSS_GRADIENTS",
    "sigmoid_prime_max",
    "EDGE_POINTS",
    "compare",
    "identities",
    "main",
]

_MOVED = ("check_equivalent", "parse_answer", "SymbolicResult")


def __getattr__(name):
    """bpkit.symbolic.check_equivalent (etc.): the course's answer checker, moved to
    bpkit.course.answers."""
    if name in _MOVED:
        from .course import answers

        return getattr(answers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------------------------
# Derivatives derived by SymPy
# ----------------------------------------------------------------------------------------------

#: the net input of a unit (Laux a_j, Betke sigma, Frermann z_i, Micheli net_t)
a = sp.Symbol("a", real=True)
#: the output of a unit, o = g(a) (Laux x_j, Betke o_j, Frermann a_i, Micheli o_t)
o = sp.Symbol("o", real=True)


class Derivative(NamedTuple):
    """An activation g(a), its derivative derived by ``sp.diff``, and g' written with o = g(a)."""

    name: str
    g: sp.Expr
    g_prime: sp.Expr
    in_terms_of_output: sp.Expr | None


def _activation(name, g, output_form):
    return Derivative(name, g, sp.diff(g, a), output_form)


#: activation name -> Derivative. relu is Piecewise((0, a <= 0), (a, True)), so its derivative
#: Piecewise((0, a <= 0), (1, True)) is 0 at a = 0, like bpkit.relu_prime (Laux sec 5).
#: in_terms_of_output: sigmoid o (1 - o) (Betke), tanh 1 - o^2, identity 1; None for ReLU,
#: whose derivative is a step rather than a polynomial in o (1 where o > 0, else 0).
DERIVATIVES = {
    "identity": _activation("identity", a, sp.Integer(1)),
    "sigmoid": _activation("sigmoid", 1 / (1 + sp.exp(-a)), o * (1 - o)),
    "relu": _activation("relu", sp.Piecewise((0, a <= 0), (a, True)), None),
    "tanh": _activation("tanh", sp.tanh(a), 1 - o**2),
}


class LossGradient(NamedTuple):
    """An objective of outputs Y and targets T (N x K symbol matrices) and its gradient dE/dY."""

    name: str
    objective: sp.Expr
    gradient: sp.Matrix
    Y: sp.Matrix
    T: sp.Matrix


def _loss_gradient(name, objective_of, n=3, k=2):
    Y = sp.Matrix(n, k, lambda i, j: sp.Symbol(f"y_{i}{j}", real=True))
    T = sp.Matrix(n, k, lambda i, j: sp.Symbol(f"t_{i}{j}", real=True))
    E = objective_of(Y, T, n)
    return LossGradient(name, E, Y.applyfunc(lambda y: sp.diff(E, y)), Y, T)


def _sse(Y, T, n):
    return sp.Rational(1, 2) * sum((y - t) ** 2 for y, t in zip(Y, T))


#: objective name -> LossGradient for N = 3 patterns and K = 2 outputs:
#:   "sse"   E = 1/2 sum (y - t)^2           dE/dy = y - t          (Laux eq 19, Micheli)
#:   "mse"   E = sse / N                     dE/dy = (y - t) / N    (Frermann, Laux eq 3)
#:   "betke" P = -sum (d - o)^2, maximised   dP/do = 2 (d - o)      (Betke; P = -2 sse, so the
#:           gradient is -2 dE_sse/dY: opposite sign and a factor 2; Betke's beta drops the 2)
LOSS_GRADIENTS = {
    "sse": _loss_gradient("sse", _sse),
    "mse": _loss_gradient("mse", lambda Y, T, n: _sse(Y, T, n) / n),
    "betke": _loss_gradient("betke", lambda Y, T, n: -sum((t - y) ** 2 for y, t in zip(Y, T))),
}


def sigmoid_prime_max():
    """(a*, g'(a*)) where the sigmoid's derivative is largest, found by SymPy: (0, 1/4).

    Solves g''(a) = 0 and checks the sign of g''' there; this bound is why deep sigmoid nets
    shrink gradients (Laux sec 3).
    """
    gp = DERIVATIVES["sigmoid"].g_prime
    gpp = sp.diff(gp, a)
    roots = [r for r in sp.solve(sp.simplify(gpp), a) if r.is_real]
    best = [r for r in roots if sp.diff(gpp, a).subs(a, r).evalf() < 0]
    if len(best) != 1:
        raise ArithmeticError(f"expected one maximum of sigmoid', SymPy found {roots}")
    return best[0], sp.simplify(gp.subs(a, best[0]))


# ----------------------------------------------------------------------------------------------
# python -m bpkit.symbolic: SymPy against bpkit's numbers
# ----------------------------------------------------------------------------------------------

#: net inputs where the numeric derivatives are compared, edge values first
EDGE_POINTS = (0.0, 1e-12, -1e-12, 1.0, -1.0, 30.0, -30.0, 700.0, -700.0, 1e3, -1e3)
GRID = tuple(float(x) for x in np.linspace(-8, 8, 33) if float(x) not in EDGE_POINTS)
RTOL, ATOL = 1e-7, 1e-12


def _numeric_table():
    """{name: callable} from bpkit's numeric core (imported here to keep the import light)."""
    import bpkit

    table = {}
    for name in DERIVATIVES:
        act = bpkit.activation(name)
        table[name] = act.g
        table[name + "_prime"] = act.g_prime
    table["sse"] = lambda Y, T: bpkit.loss("sse", Y, T)
    table["mse"] = lambda Y, T: bpkit.loss("mse", Y, T)
    # P = -sum (d - o)^2 = -2 sse  ->  dP/do = -2 dE_sse/do
    table["betke"] = lambda Y, T: tuple(-2 * v for v in bpkit.loss("sse", Y, T))
    return table


def _exact(expr, symbols):
    """expr as a high-precision function of floats (mpmath, 50 digits): no overflow at |a| = 1e3."""
    import mpmath

    f = sp.lambdify(symbols, expr, modules="mpmath")

    def evaluate(*xs):
        with mpmath.workdps(50):
            return float(f(*[mpmath.mpf(x) for x in xs]))

    return evaluate


def _agree(num, ref):
    return math.isfinite(num) and abs(num - ref) <= ATOL + RTOL * abs(ref)


def compare(numeric=None, points=EDGE_POINTS + GRID, seed=0):
    """Rows (what, at, sympy_value, numeric_value, ok) comparing SymPy with the numeric functions.

    numeric: {name: function} overriding bpkit's, keys "sigmoid", "sigmoid_prime", ..., and
    "sse", "mse", "betke" (functions (Y, T) -> (value, gradient)). Agreement means
    |numeric - sympy| <= 1e-12 + 1e-7 |sympy|; SymPy is evaluated with 50-digit mpmath. A numeric
    activation that overflows, divides by zero or produces nan (a NumPy warning) counts as a
    disagreement: bpkit promises no warnings for |a| <= 1e3.
    """
    table = _numeric_table()
    table.update(numeric or {})
    rows = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name, d in DERIVATIVES.items():
            for label, expr in ((name, d.g), (name + "_prime", d.g_prime)):
                ref_f, num_f = _exact(expr, [a]), table[label]
                for x in points:
                    ref = ref_f(x)
                    try:
                        with np.errstate(
                            over="raise", divide="raise", invalid="raise", under="ignore"
                        ):
                            num = float(num_f(np.float64(x)))
                    except Exception:  # noqa: BLE001 - a crash or an overflow is a disagreement (nan)
                        num = float("nan")
                    rows.append((label, x, ref, num, _agree(num, ref)))
        rng = np.random.default_rng(seed)
        for name, lg in LOSS_GRADIENTS.items():
            symbols = list(lg.Y) + list(lg.T)
            ref_E = _exact(lg.objective, symbols)
            ref_G = [_exact(g, symbols) for g in lg.gradient]
            for trial in range(3):
                Y, T = rng.normal(size=lg.Y.shape) * 2, rng.normal(size=lg.T.shape)
                xs = list(Y.ravel()) + list(T.ravel())
                try:
                    E, G = table[name](Y, T)
                    E, G = float(E), np.asarray(G, dtype=float).ravel()
                except Exception:  # noqa: BLE001
                    E, G = float("nan"), np.full(Y.size, np.nan)
                rows.append((name, f"value #{trial}", ref_E(*xs), E, _agree(E, ref_E(*xs))))
                errs = [abs(g - r(*xs)) for g, r in zip(G, ref_G)]
                worst = (
                    int(np.argmax(errs))
                    if np.all(np.isfinite(errs))
                    else int(np.argmax(~np.isfinite(G)))
                )
                ref = ref_G[worst](*xs)
                rows.append(
                    (
                        name + " gradient",
                        f"max err #{trial}",
                        ref,
                        float(G[worst]),
                        all(_agree(g, r(*xs)) for g, r in zip(G, ref_G)),
                    )
                )
    return rows


def identities():
    """Rows (what, ok) for the symbolic identities: g' in terms of o, ReLU'(0) = 0, max sigmoid' = 1/4."""
    rows = []
    for name, d in DERIVATIVES.items():
        if d.in_terms_of_output is not None:
            diff = sp.simplify(d.g_prime - d.in_terms_of_output.subs(o, d.g))
            rows.append((f"{name}' = {d.in_terms_of_output} with o = g(a)", diff == 0))
    rows.append(("relu'(0) = 0", DERIVATIVES["relu"].g_prime.subs(a, 0) == 0))
    rows.append(("max of sigmoid' is 1/4 at a = 0", sigmoid_prime_max() == (0, sp.Rational(1, 4))))
    mse, sse = LOSS_GRADIENTS["mse"], LOSS_GRADIENTS["sse"]
    betke = LOSS_GRADIENTS["betke"]
    rows.append(
        (
            "dMSE/dY = dSSE/dY / N",
            sp.simplify(mse.gradient - sse.gradient / mse.Y.rows) == sp.zeros(*mse.Y.shape),
        )
    )
    rows.append(
        (
            "dP/dO = -2 dSSE/dY (Betke)",
            sp.simplify(betke.gradient + 2 * sse.gradient) == sp.zeros(*sse.Y.shape),
        )
    )
    return rows


def main(argv=None, *, numeric=None, out=None):
    """Print the SymPy-against-bpkit table; return 0 if everything agrees, 1 otherwise.

    numeric: optional {name: function} replacing bpkit's functions (see compare), so a test can
    show that a wrong derivative makes this return non-zero. out: text stream (default stdout).
    """
    out = sys.stdout if out is None else out
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--all" in args
    rows = compare(numeric)
    bad = [r for r in rows if not r[4]]
    print(
        "SymPy derivatives against bpkit's numeric functions "
        f"(agree: |bpkit - sympy| <= {ATOL:g} + {RTOL:g} |sympy|; SymPy evaluated with 50 digits)",
        file=out,
    )
    print(f"{'function':<18} {'at':>14} {'sympy':>24} {'bpkit':>24} {'abs err':>10}  ok", file=out)
    shown = (
        rows
        if verbose
        else [r for r in rows if not isinstance(r[1], float) or r[1] in EDGE_POINTS or not r[4]]
    )
    for what, at, ref, num, ok in shown:
        at_s = f"{at:.6g}" if isinstance(at, float) else at
        err = abs(num - ref) if math.isfinite(num) else float("nan")
        print(
            f"{what:<18} {at_s:>14} {ref:>24.16g} {num:>24.16g} {err:>10.2e}  {'yes' if ok else 'NO'}",
            file=out,
        )
    if not verbose:
        print(
            f"(plus {len(rows) - len(shown)} agreeing grid points in [-8, 8]; --all shows them)",
            file=out,
        )
    print("\nSymbolic identities", file=out)
    ident = identities()
    for what, ok in ident:
        print(f"  {'yes' if ok else 'NO ':<4} {what}", file=out)
    failures = len(bad) + sum(1 for _, ok in ident if not ok)
    print(
        f"\n{len(rows)} comparisons, {len(ident)} identities: "
        + ("all agree" if not failures else f"{failures} DISAGREE"),
        file=out,
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
