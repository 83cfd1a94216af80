"""Small seeded data sets. Nothing is downloaded.

xor()                 the four XOR patterns, X (4, 2), T (4, 1)
two_moons(n, ...)     two interleaving half circles, X (n, 2), y (n,) in {0, 1}
spirals(n, classes)   interleaved spiral arms, X (n, 2), y (n,) in {0 .. classes-1}
one_hot(y, k)         labels (N,) -> targets (N, k)
load_digits()         8x8 handwritten digits, X (1797, 64) in 0..16, y (1797,) in 0..9
"""

import gzip
from pathlib import Path

import numpy as np

_DIGITS = Path(__file__).parent / "data" / "digits.csv.gz"


def _count(name, n, low=1):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < low:
        raise ValueError(f"{name} must be an int >= {low}; given {n!r}")
    return int(n)


def _noise(noise):
    if not (np.isscalar(noise) and noise >= 0):
        raise ValueError(f"noise must be a number >= 0; given {noise!r}")
    return float(noise)


def xor():
    """X (4, 2) = the four corners of the unit square, T (4, 1) = x1 XOR x2 (floats)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    T = np.array([[0], [1], [1], [0]], dtype=float)
    return X, T


def two_moons(n=200, noise=0.1, seed=0):
    """Two interleaving half circles (as in scikit-learn's make_moons), shuffled.

    Returns X (n, 2) floats and y (n,) ints: class 0 the upper moon, class 1 the lower.
    """
    n, noise = _count("n", n, 2), _noise(noise)
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n - n0)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)], np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]])
    y = np.r_[np.zeros(n0, int), np.ones(n - n0, int)]
    X += rng.normal(0.0, noise, X.shape)
    order = rng.permutation(n)
    return X[order], y[order]


def spirals(n=200, classes=2, noise=0.2, seed=0):
    """`classes` spiral arms around the origin (as in CS231n), shuffled; radius <= 1.

    Returns X (n, 2) floats and y (n,) ints in 0 .. classes-1 (sizes differ by at most one).
    noise is the std of the angle noise in radians.
    """
    n, classes, noise = _count("n", n), _count("classes", classes), _noise(noise)
    if n < classes:
        raise ValueError(f"n must be >= classes; given n={n}, classes={classes}")
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(classes):
        m = n // classes + (c < n % classes)
        r = np.linspace(0.05, 1.0, m)
        t = np.linspace(c * 2 * np.pi / classes, c * 2 * np.pi / classes + 1.75 * np.pi, m)
        t = t + rng.normal(0.0, noise, m)
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(m, c))
    X, y = np.concatenate(X), np.concatenate(y)
    order = rng.permutation(n)
    return X[order], y[order]


def one_hot(y, k):
    """Labels y (N,) with values in 0 .. k-1 -> targets T (N, k) of 0.0 and 1.0."""
    k = _count("k", k)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (N,); given shape {y.shape}")
    if y.size and (y.dtype.kind not in "iu" and not np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"y must hold integer labels; given dtype {y.dtype}")
    y = y.astype(int)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(
            f"labels must lie in 0 .. {k - 1}; given values from {y.min()} to {y.max()}"
        )
    T = np.zeros((y.size, k))
    T[np.arange(y.size), y] = 1.0
    return T


def load_digits():
    """The 8x8 handwritten digits (UCI optdigits test set, as shipped with scikit-learn).

    Returns X (1797, 64) floats 0..16 (pixel counts, row by row) and y (1797,) ints 0..9.
    Read from bpkit/data/digits.csv.gz (see bpkit/data/README.md for origin and licence).
    """
    with gzip.open(_DIGITS, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :64].astype(float), data[:, 64].astype(int)
