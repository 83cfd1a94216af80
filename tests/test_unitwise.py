"""bpkit.unitwise.backprop (explicit loops, Laux eqs 13-16) gives the numbers of the matrix form."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit
import bpkit.unitwise


def random_net(seed, depth):
    rng = np.random.default_rng(seed)
    sizes = list(rng.integers(1, 5, size=depth + 1))
    acts = [str(a) for a in rng.choice(bpkit.ACTIVATIONS, size=depth)]
    W = [rng.normal(0, 1, (sizes[l + 1], sizes[l])) for l in range(depth)]
    b = [rng.normal(0, 1, sizes[l + 1]) for l in range(depth)]
    N = int(rng.integers(1, 6))
    return W, b, acts, rng.normal(0, 1, (N, sizes[0])), rng.normal(0, 1, (N, sizes[-1]))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 10**6), st.integers(1, 4), st.sampled_from(bpkit.LOSSES))
def test_unitwise_equals_matrix_form(seed, depth, loss):
    W, b, acts, X, T = random_net(seed, depth)
    E1, dW1, db1 = bpkit.backprop(W, b, acts, X, T, loss)
    E2, dW2, db2 = bpkit.unitwise.backprop(W, b, acts, X, T, loss)
    assert isinstance(E2, float) and E2 == pytest.approx(E1, rel=1e-12, abs=1e-14)
    for g1, g2 in zip(dW1 + db1, dW2 + db2):
        assert g1.shape == g2.shape
        np.testing.assert_allclose(g2, g1, rtol=1e-10, atol=1e-13)


def test_unitwise_laux_sec5():
    W = [np.array([[1.0], [2.0]]), np.array([[-3.0, 4.0]])]
    b = [np.array([-1.0, 1.0]), np.array([1.0])]
    E, dW, db = bpkit.unitwise.backprop(
        W, b, ["relu", "identity"], np.array([[1.0]]), np.array([[1.0]])
    )
    assert E == 72.0
    assert dW[0].tolist() == [[0.0], [48.0]] and db[0].tolist() == [0.0, 48.0]
    assert dW[1].tolist() == [[0.0, 36.0]] and db[1].tolist() == [12.0]


def test_unitwise_sums_over_patterns():
    """E_tot = sum_p E_p (Micheli): the gradient on two patterns is the sum of the single ones."""
    W, b, acts, X, T = random_net(42, 2)
    X, T = np.vstack([X[:1], X[:1] * 2]), np.vstack([T[:1], T[:1] - 1])
    E, dW, db = bpkit.unitwise.backprop(W, b, acts, X, T, "sse")
    parts = [
        bpkit.unitwise.backprop(W, b, acts, X[n : n + 1], T[n : n + 1], "sse") for n in range(2)
    ]
    assert E == pytest.approx(parts[0][0] + parts[1][0], rel=1e-13)
    for l in range(2):
        np.testing.assert_allclose(dW[l], parts[0][1][l] + parts[1][1][l], rtol=1e-12)
        np.testing.assert_allclose(db[l], parts[0][2][l] + parts[1][2][l], rtol=1e-12)


def test_unitwise_validates():
    with pytest.raises(
        ValueError, match=r"weights\[0\] has shape \(2, 3\) but layer 0 receives 2 inputs"
    ):
        bpkit.unitwise.backprop(
            [np.zeros((2, 3))], [np.zeros(2)], ["relu"], np.zeros((1, 2)), np.zeros((1, 2))
        )
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        bpkit.unitwise.backprop(
            [np.zeros((2, 2))], [np.zeros(2)], ["relu"], np.zeros((1, 2)), np.zeros((1, 2)), "l2"
        )
