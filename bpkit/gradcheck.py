"""Gradient checking by centred differences: is an analytic gradient right?

df/dx_i  ~  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)      error O(eps^2)

(Not in the four texts: it is how the series checks each of their derivations numerically.)
"""

import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """Centred-difference gradient of a scalar f() with respect to the array x, shape of x.

    f takes no arguments and reads x; each entry of x is perturbed in place and restored.
    """
    if not callable(f):
        raise ValueError(
            f"f must be a function of no arguments returning a number; given {type(f).__name__}"
        )
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or not x.flags.writeable:
        kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(
            f"x must be a writeable float ndarray (it is perturbed in place); given {kind}"
        )
    if not (np.isscalar(eps) and eps > 0):
        raise ValueError(f"eps must be a positive number; given {eps!r}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        try:
            x[idx] = old + eps
            f_plus = _scalar(f())
            x[idx] = old - eps
            f_minus = _scalar(f())
        finally:
            x[idx] = old  # x is left as it was, even if f() raises
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


def _scalar(v):
    v = np.asarray(v)
    if v.size != 1:
        raise ValueError(f"f() must return a scalar; it returned an array of shape {v.shape}")
    return float(v.reshape(()))


def relative_error(a, b):
    """max over entries of |a - b| / max(|a| + |b|, 1e-12), a float (0 when equal)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a has shape {a.shape} but b has shape {b.shape}: expected equal shapes")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


def gradient_check(f, params, grads, eps=1e-6):
    """Worst relative_error between grads[i] and the numerical gradient of f() w.r.t. params[i]."""
    if len(params) != len(grads):
        raise ValueError(
            f"params and grads must have the same length; given {len(params)} and {len(grads)}"
        )
    worst = 0.0
    for i, (p, g) in enumerate(zip(params, grads)):
        if np.shape(g) != np.shape(p):
            raise ValueError(
                f"grads[{i}] has shape {np.shape(g)} but params[{i}] has shape {np.shape(p)}"
            )
        worst = max(worst, relative_error(g, numerical_gradient(f, p, eps)))
    return worst
