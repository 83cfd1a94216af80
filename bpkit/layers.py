"""One fully connected layer in matrix form (Laux sec 4).

Shapes: X (N, I) holds one input pattern per row, W (J, I) the weights (W[j, i] = w_ji, from
input i into unit j), b (J,) the biases (weights from a bias unit that always outputs 1).

    A = X W^T + b          Laux eq 17 (with the bias added)
    Y = g(A)               Laux eq 18
    Delta = g'(A) * dE/dY  Laux eq 20  (elementwise; Delta = dE/dA)
    dE/dW = Delta^T X      Laux eq 21
    dE/db = Delta summed over the N rows (the bias unit outputs 1)
    dE/dX = Delta W        Laux eq 22  (becomes dE/dY of the layer below)
"""

import numpy as np

from .activations import _float
from .activations import activation as _activation


def _matrix(name, x, shape_hint):
    """x as a finite float 2-D array, or a ValueError naming `name`."""
    x = _float(x)
    if x.ndim != 2:
        extra = "; for a single pattern use x.reshape(1, -1)" if x.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D {shape_hint}; given shape {x.shape}{extra}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite: given values include nan or inf")
    return x


def _forward(X, W, b, act):
    """dense_forward without input checks; act is an Activation. Returns (A, Y)."""
    A = X @ W.T + b  # Laux eq 17
    return A, act.g(A)  # Laux eq 18


def _backward(dE_dY, X, A, act):
    """dense_backward without input checks and without dE/dX: returns (Delta, dE_dW, dE_db)."""
    Delta = act.g_prime(A) * dE_dY  # Laux eq 20
    return Delta, Delta.T @ X, Delta.sum(axis=0)  # Laux eq 21, and the bias column


def _check_layer(X, W, b):
    X = _matrix("X", X, "(N, I)")
    W = _float(W)
    b = _float(b)
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (J, I); given shape {W.shape}")
    if W.shape[1] != X.shape[1]:
        raise ValueError(
            f"W has shape {W.shape} but X has {X.shape[1]} columns (inputs): "
            f"expected ({W.shape[0]}, {X.shape[1]})"
        )
    if b.shape != (W.shape[0],):
        raise ValueError(f"b has shape {b.shape}: expected ({W.shape[0]},), one bias per row of W")
    return X, W, b


def dense_forward(X, W, b, activation):
    """Forward pass of one layer: returns (A, Y), both (N, J).  Laux eqs 17-18.

    X (N, I), W (J, I), b (J,), activation a name from ACTIVATIONS (or an Activation).
    """
    act = _activation(activation)
    X, W, b = _check_layer(X, W, b)
    return _forward(X, W, b, act)


def dense_backward(dE_dY, X, W, A, activation):
    """Backward pass of one layer: returns (dE_dX (N, I), dE_dW (J, I), dE_db (J,)).

    dE_dY (N, J) is the gradient of E with respect to this layer's output, A (N, J) its net
    input from the forward pass. Laux eqs 20-22.
    """
    act = _activation(activation)
    X, W, _ = _check_layer(X, W, np.zeros(np.shape(W)[0] if np.ndim(W) == 2 else 0))
    N, J = X.shape[0], W.shape[0]
    dE_dY = _matrix("dE_dY", dE_dY, "(N, J)")
    A = _matrix("A", A, "(N, J)")
    for name, M in (("dE_dY", dE_dY), ("A", A)):
        if M.shape != (N, J):
            raise ValueError(
                f"{name} has shape {M.shape}: expected ({N}, {J}) = (rows of X, rows of W)"
            )
    Delta, dW, db = _backward(dE_dY, X, A, act)
    return Delta @ W, dW, db  # Laux eq 22
