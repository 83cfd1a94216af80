"""bpkit.datasets: shapes, labels, seeding, and the shipped digits file."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

import bpkit
from bpkit import datasets

DIGITS = Path(bpkit.__file__).parent / "data" / "digits.csv.gz"


def test_xor():
    X, T = datasets.xor()
    assert X.shape == (4, 2) and T.shape == (4, 1) and X.dtype == T.dtype == np.float64
    np.testing.assert_array_equal(T[:, 0], np.logical_xor(X[:, 0], X[:, 1]))
    assert sorted(map(tuple, X)) == [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize("make", [datasets.two_moons, datasets.spirals])
def test_2d_sets_are_seeded(make):
    X, y = make(n=101, seed=3)
    X2, y2 = make(n=101, seed=3)
    X3, _ = make(n=101, seed=4)
    assert X.shape == (101, 2) and y.shape == (101,) and y.dtype.kind == "i"
    assert np.array_equal(X, X2) and np.array_equal(y, y2) and not np.array_equal(X, X3)
    assert np.all(np.isfinite(X))


def test_two_moons_geometry():
    X, y = datasets.two_moons(n=200, noise=0.0)
    assert np.bincount(y).tolist() == [100, 100]
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, rtol=1e-12)  # unit circle
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, rtol=1e-12)
    assert upper[:, 1].min() >= -1e-12 and lower[:, 1].max() <= 0.5 + 1e-12


def test_spirals_classes():
    X, y = datasets.spirals(n=301, classes=3, noise=0.0)
    assert sorted(np.bincount(y).tolist()) == [100, 100, 101]
    assert np.hypot(X[:, 0], X[:, 1]).max() <= 1.0 + 1e-12


def test_one_hot():
    T = datasets.one_hot(np.array([2, 0, 1, 2]), 3)
    np.testing.assert_array_equal(T, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert T.dtype == np.float64
    with pytest.raises(ValueError, match=r"labels must lie in 0 .. 2; given values from 0 to 3"):
        datasets.one_hot([0, 3], 3)
    with pytest.raises(ValueError, match=r"y must be 1-D \(N,\); given shape \(2, 1\)"):
        datasets.one_hot(np.zeros((2, 1), int), 3)
    with pytest.raises(ValueError, match="integer labels"):
        datasets.one_hot([0.5], 3)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: datasets.two_moons(n=1), r"n must be an int >= 2"),
        (lambda: datasets.two_moons(noise=-0.1), r"noise must be a number >= 0"),
        (lambda: datasets.spirals(n=2, classes=3), r"n must be >= classes"),
        (lambda: datasets.spirals(classes=0), r"classes must be an int >= 1"),
    ],
)
def test_dataset_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_load_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.dtype == np.float64 and y.dtype.kind == "i"
    assert X.min() == 0 and X.max() == 16 and np.all(X == np.round(X))
    # class distribution of the optdigits test set as listed by UCI (optdigits.names)
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_digits_file_is_the_documented_copy():
    readme = (DIGITS.parent / "README.md").read_text()
    digest = hashlib.sha256(DIGITS.read_bytes()).hexdigest()
    assert digest in readme and "BSD" in readme and "Alpaydin" in readme
