"""Activation functions g and their derivatives g' (of the net input a).

Every function takes a float or an array and returns the same kind. Integer input is
converted to float64; float32 input stays float32.

Laux writes x_j = g(a_j), Betke o_j = f(sigma), Frermann a_i = g(z_i), Micheli o_t = f_t(net_t).
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

ACTIVATIONS = ("identity", "sigmoid", "relu", "tanh")


def _float(a):
    """a as a float ndarray (no copy when it already is one)."""
    a = np.asarray(a)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def identity(a):
    """g(a) = a, the usual output activation (Laux sec 1, before eq 13)."""
    return _float(a)[()]


def identity_prime(a):
    """g'(a) = 1, so delta_k = dE/dy_k at an identity output (Laux eq 13)."""
    return np.ones_like(_float(a))[()]


def _sigmoid(a):
    e = np.exp(-np.abs(a))  # exp of -|a| <= 0 only: never overflows
    return np.where(a >= 0, 1, e) / (1 + e)


def sigmoid(a):
    """g(a) = 1 / (1 + exp(-a))  (Betke f(sigma), Frermann a_i = g(z_i)), without overflow.

    With e = exp(-|a|):  1 / (1 + e) for a >= 0  and  e / (1 + e) for a < 0  (the same value).
    No warning even for |a| = 1e3.
    """
    return _sigmoid(_float(a))[()]


def sigmoid_prime(a):
    """g'(a) = g(a) (1 - g(a))   (Betke: do/dsigma = o (1 - o)).

    Computed as e / (1 + e)^2 with e = exp(-|a|), the same value without the cancellation in
    1 - g(a) for large a (at a = 30, s (1 - s) is off by 1e-3 relative; at a = 700 it gives 0).
    """
    e = np.exp(-np.abs(_float(a)))
    return (e / (1 + e) ** 2)[()]


def relu(a):
    """g(a) = max(0, a)   (Laux sec 5)."""
    return np.maximum(_float(a), 0)[()]


def relu_prime(a):
    """g'(a) = 1 if a > 0 else 0; in particular relu'(0) = 0 (Laux sec 5)."""
    a = _float(a)
    return (a > 0).astype(a.dtype)[()]


def tanh(a):
    """g(a) = tanh(a) (not in the four texts; a common hidden activation, range (-1, 1))."""
    return np.tanh(_float(a))[()]


def tanh_prime(a):
    """g'(a) = 1 - tanh(a)^2 (checked against sp.diff by python -m bpkit.symbolic)."""
    t = np.tanh(_float(a))
    return (1 - t * t)[()]


class Activation(NamedTuple):
    """An activation function by name, with g and its derivative g_prime."""

    name: str
    g: Callable
    g_prime: Callable


_TABLE = {
    "identity": Activation("identity", identity, identity_prime),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_prime),
    "relu": Activation("relu", relu, relu_prime),
    "tanh": Activation("tanh", tanh, tanh_prime),
}


def activation(name):
    """The Activation called `name` (one of ACTIVATIONS); an Activation is returned as is."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in _TABLE:
        raise ValueError(f"unknown activation {name!r}: expected one of {', '.join(ACTIVATIONS)}")
    return _TABLE[name]
