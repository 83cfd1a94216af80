"""bpkit core: activations, losses, layers, forward/trace/backprop, gradient checking.

Oracles: the worked results of Laux sec 5 (seeds README), hand arithmetic, centred
differences, and the `autograd` package as an independent second implementation.
"""

import warnings

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from hypothesis import given, settings
from hypothesis import strategies as st

import bpkit
from bpkit.network import interleave

# ----------------------------------------------------------------------------- helpers
AG = {  # independent definitions, differentiated by autograd
    "identity": lambda a: a,
    "sigmoid": lambda a: 1.0 / (1.0 + anp.exp(-a)),
    "relu": lambda a: anp.maximum(a, 0.0),
    "tanh": anp.tanh,
}


def ag_loss(params, acts, X, T, loss):
    Y = X
    for (W, b), act in zip(params, acts):
        Y = AG[act](anp.dot(Y, W.T) + b)
    E = 0.5 * anp.sum((Y - T) ** 2)
    return E / X.shape[0] if loss == "mse" else E


def random_net(seed, depth, acts=None, N=None):
    rng = np.random.default_rng(seed)
    sizes = list(rng.integers(1, 5, size=depth + 1))
    acts = acts or list(rng.choice(bpkit.ACTIVATIONS, size=depth))
    W = [rng.normal(0, 1, (sizes[l + 1], sizes[l])) for l in range(depth)]
    b = [rng.normal(0, 1, sizes[l + 1]) for l in range(depth)]
    N = N or int(rng.integers(1, 6))
    X = rng.normal(0, 1, (N, sizes[0]))
    T = rng.normal(0, 1, (N, sizes[-1]))
    return W, b, [str(a) for a in acts], X, T


nets = st.builds(
    lambda seed, depth, loss: (random_net(seed, depth), loss),
    st.integers(0, 10**6),
    st.integers(1, 4),
    st.sampled_from(bpkit.LOSSES),
)


# ----------------------------------------------------------------------------- Laux sec 5
def laux_net():
    """The 1-2-1 ReLU net of Laux sec 5: w1=1 w2=2 b1=-1 b2=1 w3=-3 w4=4 b3=1, x=1, t=1."""
    W = [np.array([[1.0], [2.0]]), np.array([[-3.0, 4.0]])]
    b = [np.array([-1.0, 1.0]), np.array([1.0])]
    return W, b, ["relu", "identity"], np.array([[1.0]]), np.array([[1.0]])


def test_laux_forward_and_error():
    tr = bpkit.trace(*laux_net())
    assert tr.Y[0].tolist() == [[0.0, 3.0]]  # h1 = 0, h2 = 3
    assert tr.Y[1].tolist() == [[13.0]]  # y = 13
    assert tr.E == 72.0 and isinstance(tr.E, float)  # E = 1/2 (13 - 1)^2
    assert tr.inputs[0].tolist() == [[1.0]] and tr.inputs[1].tolist() == [[0.0, 3.0]]
    assert tr.A[0].tolist() == [[0.0, 3.0]] and tr.A[1].tolist() == [[13.0]]


def test_laux_deltas_and_gradients():
    tr = bpkit.trace(*laux_net())
    assert tr.deltas[1].tolist() == [[12.0]]  # delta_y = 12
    assert tr.deltas[0].tolist() == [[0.0, 48.0]]  # delta_h1 = 0, delta_h2 = 48
    assert tr.dW[1].tolist() == [[0.0, 36.0]]  # dE/dw3 = 0, dE/dw4 = 36
    assert tr.db[1].tolist() == [12.0]  # dE/db3 = 12
    assert tr.dW[0].tolist() == [[0.0], [48.0]]  # dE/dw1 = 0, dE/dw2 = 48
    assert tr.db[0].tolist() == [0.0, 48.0]  # dE/db1 = 0, dE/db2 = 48
    E, dW, db = bpkit.backprop(*laux_net())
    assert E == 72.0 and [g.tolist() for g in dW + db] == [
        [[0.0], [48.0]],
        [[0.0, 36.0]],
        [0.0, 48.0],
        [12.0],
    ]


def test_laux_update_and_next_pass():
    W, b, acts, X, T = laux_net()
    net = bpkit.MLP([1, 2, 1], acts)
    net.weights, net.biases = W, b
    E, dW, db = net.backprop(X, T)
    bpkit.optim.GradientDescent(0.1).step(net.params(), interleave(dW, db))
    # w1 = 1, b1 = -1, w3 = -3 unchanged; w2 = -2.8, b2 = -3.8, w4 = 0.4, b3 = -0.2
    np.testing.assert_allclose(net.weights[0], [[1.0], [-2.8]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.biases[0], [-1.0, -3.8], rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.weights[1], [[-3.0, 0.4]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.biases[1], [-0.2], rtol=0, atol=1e-12)
    tr = net.trace(X, T)
    assert tr.Y[0].tolist() == [[0.0, 0.0]]  # both hidden ReLUs output 0
    assert tr.Y[1][0, 0] == pytest.approx(-0.2, abs=1e-12)  # y = -0.2
    assert tr.E == pytest.approx(0.72, abs=1e-12)  # E = 1/2 (-1.2)^2


# ----------------------------------------------------------------------------- activations
def test_activation_values():
    assert bpkit.identity(2.5) == 2.5 and bpkit.identity_prime(2.5) == 1.0
    assert bpkit.sigmoid(0.0) == 0.5 and bpkit.sigmoid_prime(0.0) == 0.25
    assert bpkit.sigmoid(np.log(3.0)) == pytest.approx(0.75)  # 1 / (1 + 1/3)
    assert bpkit.relu(-2.0) == 0.0 and bpkit.relu(3.0) == 3.0
    assert bpkit.relu_prime(0.0) == 0.0 and bpkit.relu_prime(0) == 0.0  # Laux sec 5: g'(0) = 0
    assert bpkit.relu_prime(1e-300) == 1.0 and bpkit.relu_prime(-1.0) == 0.0
    assert bpkit.tanh(0.0) == 0.0 and bpkit.tanh_prime(0.0) == 1.0
    np.testing.assert_array_equal(bpkit.relu(np.array([-1, 0, 2])), [0.0, 0.0, 2.0])


@pytest.mark.parametrize("name", bpkit.ACTIVATIONS)
def test_activation_derivative_matches_centred_differences(name):
    act = bpkit.activation(name)
    a = np.linspace(-4, 4, 41) + 0.013  # avoid the ReLU kink at 0
    numeric = (act.g(a + 1e-6) - act.g(a - 1e-6)) / 2e-6
    np.testing.assert_allclose(act.g_prime(a), numeric, atol=1e-8)
    np.testing.assert_allclose(act.g(a), AG[name](a), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", bpkit.ACTIVATIONS)
def test_activations_keep_float32_and_shape(name):
    act = bpkit.activation(name)
    a = np.ones((3, 2), dtype=np.float32)
    assert act.g(a).dtype == np.float32 and act.g_prime(a).dtype == np.float32
    assert act.g(a).shape == (3, 2) and act.g_prime(a).shape == (3, 2)


def test_sigmoid_is_stable_and_silent_for_large_inputs():
    a = np.array([-1e3, -745.0, -30.0, 0.0, 30.0, 745.0, 1e3])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        s = bpkit.sigmoid(a)
        ds = bpkit.sigmoid_prime(a)
        s32 = bpkit.sigmoid(a.astype(np.float32))
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ds)) and np.all(np.isfinite(s32))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert s[2] == pytest.approx(np.exp(-30.0) / (1 + np.exp(-30.0)), rel=1e-12)  # no cancellation
    assert ds[0] == 0.0 and ds[-1] == 0.0


def test_activation_lookup():
    act = bpkit.activation("tanh")
    assert act.name == "tanh" and act.g is bpkit.tanh and act.g_prime is bpkit.tanh_prime
    assert bpkit.activation(act) is act
    with pytest.raises(
        ValueError, match="unknown activation 'softplus'.*identity, sigmoid, relu, tanh"
    ):
        bpkit.activation("softplus")


# ----------------------------------------------------------------------------- losses
def test_losses_by_hand():
    Y = np.array([[1.0, 2.0], [3.0, 5.0]])
    T = np.array([[0.0, 2.0], [1.0, 1.0]])
    E, dY = bpkit.loss("sse", Y, T)  # 1/2 (1 + 0 + 4 + 16) = 10.5
    assert E == 10.5 and isinstance(E, float)
    np.testing.assert_array_equal(dY, [[1.0, 0.0], [2.0, 4.0]])
    E, dY = bpkit.loss("mse", Y, T)  # sse / N, N = 2 rows
    assert E == 5.25 and isinstance(E, float)
    np.testing.assert_array_equal(dY, [[0.5, 0.0], [1.0, 2.0]])


def test_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown loss 'ce'.*sse, mse"):
        bpkit.loss("ce", np.zeros((1, 1)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"Y has shape \(2, 1\) but T has shape \(2,\)"):
        bpkit.loss("sse", np.zeros((2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        bpkit.loss("sse", np.zeros((1, 1)), np.array([[np.nan]]))


# ----------------------------------------------------------------------------- one layer
def test_dense_layer_by_hand():
    X = np.array([[1.0, 2.0]])
    W = np.array([[1.0, -1.0], [0.5, 2.0], [0.0, 3.0]])
    b = np.array([0.5, -4.5, 1.0])
    A, Y = bpkit.dense_forward(X, W, b, "relu")
    np.testing.assert_array_equal(A, [[-0.5, 0.0, 7.0]])  # X W^T + b
    np.testing.assert_array_equal(Y, [[0.0, 0.0, 7.0]])
    dX, dW, db = bpkit.dense_backward(np.array([[1.0, 1.0, 2.0]]), X, W, A, "relu")
    np.testing.assert_array_equal(db, [0.0, 0.0, 2.0])  # Delta = g'(A) * dE/dY
    np.testing.assert_array_equal(dW, [[0.0, 0.0], [0.0, 0.0], [2.0, 4.0]])  # Delta^T X
    np.testing.assert_array_equal(dX, [[0.0, 6.0]])  # Delta W


@pytest.mark.parametrize("name", bpkit.ACTIVATIONS)
def test_dense_backward_matches_autograd(name):
    rng = np.random.default_rng(1)
    X, W, b, G = (
        rng.normal(size=(5, 3)),
        rng.normal(size=(4, 3)),
        rng.normal(size=4),
        rng.normal(size=(5, 4)),
    )
    A, _ = bpkit.dense_forward(X, W, b, name)
    dX, dW, db = bpkit.dense_backward(G, X, W, A, name)
    f = lambda X, W, b: anp.sum(G * AG[name](anp.dot(X, W.T) + b))  # dE/dY = G
    for got, argnum in ((dX, 0), (dW, 1), (db, 2)):
        np.testing.assert_allclose(got, grad(f, argnum)(X, W, b), rtol=1e-12, atol=1e-12)


def test_dense_rejects_bad_shapes():
    X, W, b = np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4)
    with pytest.raises(
        ValueError, match=r"W has shape \(4, 2\) but X has 3 columns.*expected \(4, 3\)"
    ):
        bpkit.dense_forward(X, np.zeros((4, 2)), b, "relu")
    with pytest.raises(ValueError, match=r"b has shape \(3,\): expected \(4,\)"):
        bpkit.dense_forward(X, W, np.zeros(3), "relu")
    with pytest.raises(ValueError, match=r"X must be 2-D.*\(3,\).*reshape"):
        bpkit.dense_forward(np.zeros(3), W, b, "relu")
    with pytest.raises(ValueError, match=r"dE_dY has shape \(4, 2\): expected \(2, 4\)"):
        bpkit.dense_backward(np.zeros((4, 2)), X, W, np.zeros((2, 4)), "relu")
    with pytest.raises(ValueError, match="unknown activation"):
        bpkit.dense_forward(X, W, b, "ReLU")


# ----------------------------------------------------------------------------- whole network
@settings(max_examples=60, deadline=None, derandomize=True)
@given(nets)
def test_backprop_matches_centred_differences(case):
    (W, b, acts, X, T), loss = case
    E, dW, db = bpkit.backprop(W, b, acts, X, T, loss)
    f = lambda: bpkit.backprop(W, b, acts, X, T, loss)[0]
    for p, g in zip(W + b, dW + db):
        assert g.shape == p.shape
        np.testing.assert_allclose(g, bpkit.numerical_gradient(f, p), rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(nets)
def test_backprop_matches_autograd(case):
    (W, b, acts, X, T), loss = case
    E, dW, db = bpkit.backprop(W, b, acts, X, T, loss)
    params = list(zip(W, b))
    assert E == pytest.approx(ag_loss(params, acts, X, T, loss), rel=1e-12, abs=1e-12)
    ag = grad(ag_loss)(params, acts, X, T, loss)
    for l in range(len(W)):
        np.testing.assert_allclose(dW[l], ag[l][0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(db[l], ag[l][1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("act", bpkit.ACTIVATIONS)
@pytest.mark.parametrize("loss", bpkit.LOSSES)
def test_gradient_check_every_activation_and_loss(act, loss):
    W, b, acts, X, T = random_net(7, 3, acts=[act, act, act], N=5)
    X = X + 0.01  # keep away from ReLU kinks
    E, dW, db = bpkit.backprop(W, b, acts, X, T, loss)
    f = lambda: bpkit.backprop(W, b, acts, X, T, loss)[0]
    # a wrong formula gives O(1); round-off on entries ~1e-5 (saturated sigmoids) gives ~1e-6
    assert bpkit.gradient_check(f, W + b, dW + db, eps=1e-5) < 1e-5


def test_mse_is_sse_over_N():
    W, b, acts, X, T = random_net(3, 2, N=5)
    E1, dW1, db1 = bpkit.backprop(W, b, acts, X, T, "sse")
    E2, dW2, db2 = bpkit.backprop(W, b, acts, X, T, "mse")
    assert E2 == pytest.approx(E1 / 5, rel=1e-14)
    for g1, g2 in zip(dW1 + db1, dW2 + db2):
        np.testing.assert_allclose(g2, g1 / 5, rtol=1e-14)


def test_trace_deltas_are_dE_dA():
    """Delta_l = dE/dA_l (Laux eq 20), checked by differentiating E as a function of A_l."""
    W, b, acts, X, T = random_net(11, 3, acts=["tanh", "sigmoid", "identity"], N=4)
    tr = bpkit.trace(W, b, acts, X, T, "mse")
    assert len(tr.inputs) == len(tr.A) == len(tr.Y) == len(tr.deltas) == 3
    np.testing.assert_array_equal(tr.inputs[0], X)
    for l in range(3):
        if l > 0:
            np.testing.assert_array_equal(tr.inputs[l], tr.Y[l - 1])

        def E_of_A(A, l=l):
            Y = AG[acts[l]](A)
            for m in range(l + 1, 3):
                Y = AG[acts[m]](anp.dot(Y, W[m].T) + b[m])
            return 0.5 * anp.sum((Y - T) ** 2) / X.shape[0]

        np.testing.assert_allclose(tr.deltas[l], grad(E_of_A)(tr.A[l]), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(tr.Y[-1], bpkit.forward(W, b, acts, X), rtol=0, atol=0)


def test_dtype_follows_inputs():
    W, b, acts, X, T = random_net(5, 2, N=3)
    f32 = lambda xs: [x.astype(np.float32) for x in xs]
    E, dW, db = bpkit.backprop(f32(W), f32(b), acts, X.astype(np.float32), T.astype(np.float32))
    assert isinstance(E, float)
    assert all(g.dtype == np.float32 for g in dW + db)
    assert bpkit.forward(f32(W), f32(b), acts, X.astype(np.float32)).dtype == np.float32
    assert bpkit.forward(W, b, acts, X.astype(int)).dtype == np.float64  # ints become float64


# ----------------------------------------------------------------------------- bad input
def test_wrong_weight_shape_message():
    X, T = np.zeros((5, 2)), np.zeros((5, 3))
    W = [np.zeros((4, 2)), np.zeros((3, 5))]
    b = [np.zeros(4), np.zeros(3)]
    msg = "weights[1] has shape (3, 5) but layer 1 receives 4 inputs from layer 0: expected (3, 4)"
    for call in (
        lambda: bpkit.backprop(W, b, ["relu", "identity"], X, T),
        lambda: bpkit.trace(W, b, ["relu", "identity"], X, T),
        lambda: bpkit.forward(W, b, ["relu", "identity"], X),
        lambda: bpkit.unitwise.backprop(W, b, ["relu", "identity"], X, T),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == msg
    with pytest.raises(
        ValueError, match=r"weights\[0\] has shape \(4, 2\) but layer 0 receives 3 inputs from X"
    ):
        bpkit.forward(W, b, ["relu", "identity"], np.zeros((5, 3)))


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (
            lambda a: a.update(b=[np.zeros(4), np.zeros(2)]),
            r"biases\[1\] has shape \(2,\) but weights\[1\] has shape \(3, 4\): expected \(3,\)",
        ),
        (lambda a: a.update(acts=["relu"]), r"same length.*given 2, 2, 1"),
        (lambda a: a.update(W=[], b=[], acts=[]), r"same length >= 1.*given 0, 0, 0"),
        (
            lambda a: a.update(acts=["relu", "softmax"]),
            r"unknown activation 'softmax'.*identity, sigmoid, relu, tanh",
        ),
        (lambda a: a.update(loss="cross_entropy"), r"unknown loss 'cross_entropy'.*sse, mse"),
        (lambda a: a["X"].__setitem__((0, 0), np.nan), r"X must be finite"),
        (lambda a: a["T"].__setitem__((1, 2), np.inf), r"T must be finite"),
        (
            lambda a: a.update(T=np.zeros((5, 2))),
            r"T has shape \(5, 2\).*expected T of shape \(5, 3\)",
        ),
        (
            lambda a: a.update(T=np.zeros((4, 3))),
            r"T has shape \(4, 3\).*expected T of shape \(5, 3\)",
        ),
        (lambda a: a.update(X=np.zeros(2)), r"X must be 2-D.*given shape \(2,\)"),
        (lambda a: a.update(W=np.zeros((4, 2))), r"weights must be a list"),
        (lambda a: a.update(W=[np.zeros(2), np.zeros((3, 4))]), r"weights\[0\] must be 2-D"),
    ],
)
def test_bad_network_input(mutate, pattern):
    args = dict(
        W=[np.zeros((4, 2)), np.zeros((3, 4))],
        b=[np.zeros(4), np.zeros(3)],
        acts=["relu", "identity"],
        X=np.zeros((5, 2)),
        T=np.zeros((5, 3)),
        loss="sse",
    )
    mutate(args)
    for fn in (bpkit.backprop, bpkit.trace, bpkit.unitwise.backprop):
        with pytest.raises(ValueError, match=pattern):
            fn(args["W"], args["b"], args["acts"], args["X"], args["T"], loss=args["loss"])


def test_one_output_target_hint():
    W, b = [np.zeros((1, 2))], [np.zeros(1)]
    with pytest.raises(
        ValueError, match=r"T has shape \(3,\).*expected T of shape \(3, 1\).*reshape\(-1, 1\)"
    ):
        bpkit.backprop(W, b, ["sigmoid"], np.zeros((3, 2)), np.zeros(3))


# ----------------------------------------------------------------------------- gradient checking
def test_numerical_gradient_known_function_and_restores_x():
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    x0 = x.copy()
    g = bpkit.numerical_gradient(lambda: np.sum(np.sin(x)) + x[0, 1] ** 3, x)
    expected = np.cos(x0)
    expected[0, 1] += 3 * x0[0, 1] ** 2
    np.testing.assert_allclose(g, expected, atol=1e-8)
    np.testing.assert_array_equal(x, x0)  # restored exactly


def test_numerical_gradient_rejects_bad_input():
    with pytest.raises(ValueError, match="writeable float ndarray.*int64"):
        bpkit.numerical_gradient(lambda: 0.0, np.arange(3))
    with pytest.raises(ValueError, match="writeable float ndarray.*list"):
        bpkit.numerical_gradient(lambda: 0.0, [1.0, 2.0])
    x = np.zeros(3)
    with pytest.raises(ValueError, match=r"must return a scalar.*\(3,\)"):
        bpkit.numerical_gradient(lambda: x * 2, x)


def test_relative_error_and_gradient_check():
    assert bpkit.relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert bpkit.relative_error([1.0, 2.0], [1.0, 6.0]) == 0.5  # |2-6| / (2+6)
    assert bpkit.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert bpkit.relative_error([0.0], [1e-13]) == pytest.approx(0.1)  # floor 1e-12
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        bpkit.relative_error(np.zeros(2), np.zeros(3))
    x = np.array([1.0, -2.0])
    f = lambda: float(np.sum(x**2))
    assert bpkit.gradient_check(f, [x], [2 * x]) < 1e-8
    assert bpkit.gradient_check(f, [x], [x]) == pytest.approx(1 / 3, rel=1e-6)  # factor 2 missing


def test_import_bpkit_stays_light():
    """`import bpkit` must not pull in SymPy, matplotlib or the notebook helpers."""
    import subprocess
    import sys

    code = (
        "import sys, bpkit; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sympy', 'matplotlib', 'torch') or m in ('bpkit.symbolic', 'bpkit.course.checks', 'bpkit.course.plotting')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_api_names():
    for name in (
        "identity",
        "identity_prime",
        "sigmoid",
        "sigmoid_prime",
        "relu",
        "relu_prime",
        "tanh",
        "tanh_prime",
        "activation",
        "loss",
        "dense_forward",
        "dense_backward",
        "forward",
        "trace",
        "backprop",
        "MLP",
        "train",
        "History",
        "Trace",
        "numerical_gradient",
        "relative_error",
        "gradient_check",
    ):
        assert callable(getattr(bpkit, name)), name
    assert bpkit.ACTIVATIONS == ("identity", "sigmoid", "relu", "tanh") and bpkit.LOSSES == (
        "sse",
        "mse",
    )
    assert callable(bpkit.unitwise.backprop) and callable(bpkit.datasets.load_digits)
    for name in ("GradientDescent", "Momentum", "Rprop", "Quickprop"):
        assert hasattr(getattr(bpkit.optim, name), "step")
    assert [f for f in bpkit.Trace.__dataclass_fields__] == [
        "inputs",
        "A",
        "Y",
        "deltas",
        "E",
        "dW",
        "db",
    ]


@pytest.mark.parametrize(
    "name", ["forward", "trace", "backprop", "dense_forward", "dense_backward", "loss", "sigmoid"]
)
def test_public_functions_do_not_depend_on_each_other(name):
    """The notebook checks forbid one reference function at a time (by swapping its __code__);
    the others must keep working."""
    fn = getattr(bpkit, name)
    saved = fn.__code__

    def blocked(*args, **kwargs):
        raise RuntimeError("forbidden")

    fn.__code__ = blocked.__code__
    try:
        W, b, acts, X, T = random_net(2, 2, acts=["tanh", "identity"], N=3)
        net = bpkit.MLP([X.shape[1], 3, T.shape[1]], ["tanh", "identity"])
        calls = {
            "forward": lambda: bpkit.forward(W, b, acts, X),
            "trace": lambda: bpkit.trace(W, b, acts, X, T),
            "backprop": lambda: bpkit.backprop(W, b, acts, X, T),
            "sigmoid_prime": lambda: bpkit.sigmoid_prime(X),
            "MLP": lambda: (net.forward(X), net.backprop(X, T), net.trace(X, T), net.predict(X)),
            "unitwise": lambda: bpkit.unitwise.backprop(W, b, acts, X, T),
            "train": lambda: bpkit.train(net, X, T, bpkit.optim.GradientDescent(0.1), epochs=1),
        }
        for other, call in calls.items():
            if other != name:
                call()
    finally:
        fn.__code__ = saved


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0])

    def f():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        bpkit.numerical_gradient(f, x)
    assert x.tolist() == [1.0, 2.0]


def test_sigmoid_prime_keeps_relative_precision_in_the_tails():
    # reference: SymPy's derivative of 1/(1 + exp(-a)), evaluated with 40 digits
    import sympy as sp

    s = sp.Symbol("s")
    dsig = sp.diff(1 / (1 + sp.exp(-s)), s)
    for a in (30.0, -30.0, 700.0, -700.0):
        exact = float(sp.N(dsig.subs(s, sp.Float(a, 40)), 40))
        assert abs(bpkit.sigmoid_prime(a) - exact) <= 1e-12 * exact
