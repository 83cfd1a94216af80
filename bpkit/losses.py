"""Loss functions E(Y, T) and their gradients dE/dY.

  "sse": E = 1/2 sum_n sum_k (y_k - t_k)^2      Laux eqs 1 and 19, Micheli E_tot = sum_p E_p
  "mse": E = sse / N                            Frermann E = 1/(2N) sum (y - yhat)^2

so that dE/dY = Y - T for "sse" (Laux eq 13) and (Y - T) / N for "mse" (the mean gradient of
Laux eq 3). Betke's performance P = -sum (d - o)^2 is -2 * sse.
"""

import numpy as np

from .activations import _float

LOSSES = ("sse", "mse")


def _check_name(name):
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")


def _loss(name, Y, T):
    """loss() without input checks: (E as a float, dE/dY with Y's shape)."""
    D = Y - T  # dE/dY of "sse": y_k - t_k, Laux eq 13
    E = 0.5 * float(np.vdot(D, D))  # Laux eq 19: 1/2 ||Y - T||^2
    if name == "mse":  # Frermann: E = 1/(2N) sum (y - yhat)^2
        N = Y.shape[0]
        return E / N, D / N
    return E, D


def loss(name, Y, T):
    """E and dE/dY for outputs Y (N, K) and targets T (N, K).

    Returns (E: float, dE_dY: ndarray (N, K)). See the module docstring for the formulas.
    """
    _check_name(name)
    Y, T = _float(Y), _float(T)
    if Y.shape != T.shape:
        raise ValueError(
            f"Y has shape {Y.shape} but T has shape {T.shape}: expected equal shapes (N, K)"
        )
    if Y.ndim != 2:
        raise ValueError(f"Y and T must be 2-D (N, K); given shape {Y.shape}")
    if not (np.isfinite(Y).all() and np.isfinite(T).all()):
        raise ValueError("Y and T must be finite: given values include nan or inf")
    return _loss(name, Y, T)
