"""MLP, update rules (bpkit.optim) and the training loop (bpkit.train).

Oracles: hand computations, unrolled recurrences, and hand-written loops for a linear layer.
"""

import warnings

import numpy as np
import pytest

import bpkit
from bpkit import optim
from bpkit.network import interleave


# ----------------------------------------------------------------------------- MLP
def test_mlp_shapes_and_seeded_init():
    net = bpkit.MLP([3, 5, 2], ["relu", "identity"], seed=4)
    assert [W.shape for W in net.weights] == [(5, 3), (2, 5)]
    assert [b.shape for b in net.biases] == [(5,), (2,)]
    assert all(np.all(b == 0) for b in net.biases)
    again = bpkit.MLP([3, 5, 2], ["relu", "identity"], seed=4)
    other = bpkit.MLP([3, 5, 2], ["relu", "identity"], seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, again.weights))
    assert not np.array_equal(net.weights[0], other.weights[0])
    assert net.activations == ["relu", "identity"] and net.sizes == [3, 5, 2]


def test_mlp_init_schemes():
    xavier = bpkit.MLP([300, 200], ["identity"], init="xavier").weights[0]
    limit = np.sqrt(6 / 500)
    assert np.abs(xavier).max() <= limit and np.abs(xavier).max() > 0.99 * limit
    assert xavier.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)  # uniform(-l, l)
    he = bpkit.MLP([300, 200], ["relu"], init="he").weights[0]
    assert he.std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    fixed = bpkit.MLP([300, 200], ["relu"], init=0.1).weights[0]
    assert fixed.std() == pytest.approx(0.1, rel=0.02)
    assert bpkit.MLP([2, 2], ["relu"], dtype=np.float32).weights[0].dtype == np.float32


def test_mlp_params_are_live_and_copy_is_independent():
    net = bpkit.MLP([2, 3, 1], ["tanh", "sigmoid"])
    p = net.params()
    assert (
        len(p) == 4 and p[0] is net.weights[0] and p[1] is net.biases[0] and p[3] is net.biases[1]
    )
    twin = net.copy()
    p[0] += 1.0
    assert np.array_equal(net.weights[0], twin.weights[0] + 1.0)
    assert twin.activations == net.activations


def test_mlp_forward_backprop_predict():
    net = bpkit.MLP([2, 3, 2], ["tanh", "identity"], seed=1)
    X = np.array([[0.5, -1.0], [2.0, 0.0]])
    expected = np.tanh(X @ net.weights[0].T + net.biases[0]) @ net.weights[1].T + net.biases[1]
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-14)
    np.testing.assert_array_equal(net.predict(X), expected.argmax(axis=1))
    E, dW, db = net.backprop(X, np.zeros((2, 2)))
    E2, dW2, db2 = bpkit.backprop(net.weights, net.biases, net.activations, X, np.zeros((2, 2)))
    assert E == E2 and all(np.array_equal(a, b) for a, b in zip(dW + db, dW2 + db2))
    one = bpkit.MLP([1, 1], ["identity"])
    one.weights[0][...] = 1.0
    np.testing.assert_array_equal(one.predict(np.array([[0.2], [0.7], [0.5]])), [0, 1, 0])  # > 0.5


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(sizes=[2], activations=[]), r"sizes must be a list of >= 2 positive ints"),
        (dict(sizes=[2, 0, 1], activations=["relu", "relu"]), r"sizes must be"),
        (
            dict(sizes=[2, 3, 1], activations=["relu"]),
            r"one name per layer \(2 for sizes \[2, 3, 1\]\)",
        ),
        (dict(sizes=[2, 3, 1], activations="relu"), r"one name per layer"),
        (dict(sizes=[2, 1], activations=["elu"]), r"unknown activation 'elu'"),
        (
            dict(sizes=[2, 1], activations=["relu"], init="glorot"),
            r"init must be 'xavier', 'he' or a std",
        ),
        (
            dict(sizes=[2, 1], activations=["relu"], dtype=np.int64),
            r"dtype must be float32 or float64",
        ),
    ],
)
def test_mlp_rejects_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        bpkit.MLP(**kwargs)


def test_mlp_validates_data():
    net = bpkit.MLP([2, 3, 1], ["relu", "sigmoid"])
    with pytest.raises(
        ValueError, match=r"weights\[0\] has shape \(3, 2\) but layer 0 receives 4 inputs"
    ):
        net.forward(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"T has shape \(5,\).*reshape\(-1, 1\)"):
        net.backprop(np.zeros((5, 2)), np.zeros(5))


# ----------------------------------------------------------------------------- optimizers
def test_gradient_descent_step():
    p = [np.array([1.0, 2.0]), np.array([[3.0]])]
    optim.GradientDescent(0.5).step(p, [np.array([2.0, -2.0]), np.array([[1.0]])])
    np.testing.assert_array_equal(p[0], [0.0, 3.0])
    np.testing.assert_array_equal(p[1], [[2.5]])


def test_momentum_equals_unrolled_recurrence():
    """dw(t) = -lr g(t) + m dw(t-1) unrolled: w_T = w_0 - lr sum_t g(t) sum_{s=0}^{T-t} m^s."""
    rng = np.random.default_rng(0)
    lr, m, T = 0.1, 0.8, 6
    grads = rng.normal(size=(T, 3))
    w = np.array([1.0, -1.0, 0.5])
    expected = w.copy()
    for t in range(T):
        expected -= lr * grads[t] * sum(m**s for s in range(T - t))
    opt = optim.Momentum(lr, momentum=m)
    for t in range(T):
        opt.step([w], [grads[t]])
    np.testing.assert_allclose(w, expected, rtol=1e-13)


def test_rprop_by_hand():
    """iRprop-, lr0 = 0.1, eta+ = 1.2, eta- = 0.5, worked out by hand."""
    w = np.zeros(3)
    opt = optim.Rprop(lr0=0.1)
    opt.step([w], [np.array([1.0, -1.0, 0.0])])  # no history: steps 0.1, move -sign(g) step
    np.testing.assert_allclose(w, [-0.1, 0.1, 0.0], rtol=1e-15)
    opt.step([w], [np.array([2.0, 1.0, 0.0])])  # agree -> 0.12; flip -> 0.05, no move
    np.testing.assert_allclose(opt.steps[0], [0.12, 0.05, 0.1], rtol=1e-15)
    np.testing.assert_allclose(w, [-0.22, 0.1, 0.0], rtol=1e-15)
    opt.step([w], [np.array([3.0, 1.0, -1.0])])  # 0.144; after a flip no adaptation; 0.1
    np.testing.assert_allclose(opt.steps[0], [0.144, 0.05, 0.1], rtol=1e-15)
    np.testing.assert_allclose(w, [-0.364, 0.05, 0.1], rtol=1e-14)


def test_rprop_step_bounds():
    """Component 0 always agrees: 1, 1.2, 1.44, 1.728, then capped at step_max = 2.
    Component 1 flips every other step: 1, 0.5, 0.5, 0.25, 0.25, then floored at step_min = 0.2."""
    w = np.zeros(2)
    opt = optim.Rprop(lr0=1.0, step_min=0.2, step_max=2.0)
    for t in range(4):
        opt.step([w], [np.array([1.0, (-1.0) ** t])])
    np.testing.assert_allclose(opt.steps[0], [1.728, 0.25], rtol=1e-14)
    for t in range(4, 10):
        opt.step([w], [np.array([1.0, (-1.0) ** t])])
    assert opt.steps[0][0] == 2.0 and opt.steps[0][1] == 0.2


def test_quickprop_jumps_to_minimum_of_quadratic():
    """E = 1/2 sum k (w - c)^2: a gradient step, then one secant step lands on w = c."""
    k, c = np.array([0.8, 1.0, 1.5, 3.0]), np.array([3.0, -1.0, 2.0, 0.5])
    w = np.zeros(4)
    opt = optim.Quickprop(lr=0.5)
    opt.step([w], [k * (w - c)])
    np.testing.assert_allclose(w, 0.5 * k * c, rtol=1e-15)  # gradient step -lr g
    opt.step([w], [k * (w - c)])
    np.testing.assert_allclose(w, c, rtol=1e-14)
    opt.step([w], [k * (w - c)])  # g = 0: stays
    np.testing.assert_allclose(w, c, rtol=1e-14)


def test_quickprop_growth_bound_and_zero_denominator():
    w = np.zeros(1)
    opt = optim.Quickprop(lr=0.01, mu=1.75)
    opt.step([w], [np.array([-3.0])])  # dw = 0.03
    opt.step([w], [np.array([-2.97])])  # secant wants 100x: bounded by mu
    np.testing.assert_allclose(opt.prev_steps[0], [1.75 * 0.03], rtol=1e-14)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        v = np.zeros(1)
        lin = optim.Quickprop(lr=0.1, mu=1.5)
        for _ in range(3):  # E = 2 w: same slope, denominator 0
            lin.step([v], [np.array([2.0])])
    np.testing.assert_allclose(v, [-0.2 * (1 + 1.5 + 1.5**2)], rtol=1e-14)


def test_optimizers_reject_bad_arguments():
    with pytest.raises(ValueError, match="lr must be a positive number"):
        optim.GradientDescent(-1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        optim.Momentum(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="eta_plus > 1"):
        optim.Rprop(eta_plus=0.9)
    with pytest.raises(
        ValueError, match=r"grads\[0\] has shape \(3,\) but params\[0\] has shape \(2,\)"
    ):
        optim.GradientDescent(0.1).step([np.zeros(2)], [np.zeros(3)])


# ----------------------------------------------------------------------------- train
def test_train_xor_reaches_full_accuracy():
    X, T = bpkit.datasets.xor()
    net = bpkit.MLP([2, 4, 1], ["tanh", "sigmoid"], seed=0)
    history = bpkit.train(net, X, T, optim.Momentum(0.5, momentum=0.9), epochs=300)
    np.testing.assert_array_equal(net.predict(X), T[:, 0])
    assert history.loss[-1] < 0.01 and history.epochs == 300 and len(history.loss) == 300


class Counter:
    def __init__(self):
        self.calls = 0

    def step(self, params, grads):
        self.calls += 1


@pytest.mark.parametrize("batch_size, per_epoch", [(None, 1), (1, 10), (3, 4), (5, 2), (10, 1)])
def test_updates_per_epoch(batch_size, per_epoch):
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(10, 2)), rng.normal(size=(10, 1))
    counter = Counter()
    h = bpkit.train(bpkit.MLP([2, 1], ["identity"]), X, T, counter, epochs=3, batch_size=batch_size)
    assert counter.calls == 3 * per_epoch and h.updates == 3 * per_epoch


def linear_case():
    rng = np.random.default_rng(3)
    return rng.normal(size=(7, 3)), rng.normal(size=(7, 2)), bpkit.MLP([3, 2], ["identity"], seed=1)


@pytest.mark.parametrize("batch_size", [1, 3, 7])
@pytest.mark.parametrize("loss", ["sse", "mse"])
def test_train_matches_hand_written_loop(batch_size, loss):
    """Linear layer y = W x + b: per pattern dE/dW = (y - t) x^T; minibatches in order (no shuffle),
    summed ("sse", Micheli) or averaged over the batch ("mse", Laux eq 3)."""
    X, T, net = linear_case()
    W, b, lr = net.weights[0].copy(), net.biases[0].copy(), 0.05
    for _ in range(2):  # epochs
        for start in range(0, 7, batch_size):
            gW, gb = np.zeros_like(W), np.zeros_like(b)
            rows = range(start, min(start + batch_size, 7))
            for n in rows:
                err = W @ X[n] + b - T[n]
                gW += np.outer(err, X[n])
                gb += err
            if loss == "mse":
                gW, gb = gW / len(rows), gb / len(rows)
            W, b = W - lr * gW, b - lr * gb
    h = bpkit.train(
        net,
        X,
        T,
        optim.GradientDescent(lr),
        epochs=2,
        batch_size=batch_size,
        loss=loss,
        shuffle=False,
    )
    np.testing.assert_allclose(net.weights[0], W, rtol=1e-12)
    np.testing.assert_allclose(net.biases[0], b, rtol=1e-12)
    E_final = 0.5 * np.sum((X @ W.T + b - T) ** 2) / (7 if loss == "mse" else 1)
    assert h.loss[-1] == pytest.approx(E_final, rel=1e-12)


def test_full_batch_mse_is_mean_gradient_and_shuffle_is_seeded():
    X, T, net = linear_case()
    a, b_ = net.copy(), net.copy()
    bpkit.train(a, X, T, optim.GradientDescent(0.1), epochs=3, loss="mse")
    bpkit.train(b_, X, T, optim.GradientDescent(0.1 / 7), epochs=3, loss="sse")  # sum / N = mean
    np.testing.assert_allclose(a.weights[0], b_.weights[0], rtol=1e-12)
    runs = []
    for seed in (0, 0, 1):
        c = net.copy()
        bpkit.train(c, X, T, optim.GradientDescent(0.1), epochs=2, batch_size=2, seed=seed)
        runs.append(c.weights[0])
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_history_and_callback_stop():
    X, T = bpkit.datasets.xor()
    net = bpkit.MLP([2, 3, 1], ["tanh", "sigmoid"], seed=2)
    seen = []
    h = bpkit.train(
        net,
        X,
        T,
        optim.GradientDescent(0.5),
        epochs=50,
        callback=lambda epoch, net_, hist: seen.append(epoch) or epoch == 5,
    )
    assert seen == [1, 2, 3, 4, 5] and h.epochs == 5 and len(h.loss) == 5 and len(h.grad_norms) == 5
    E, dW, db = net.backprop(X, T, "mse")  # history is measured on the whole set
    assert h.loss[-1] == pytest.approx(E, rel=1e-14)
    np.testing.assert_allclose(h.grad_norms[-1], [np.linalg.norm(g) for g in dW], rtol=1e-14)


def test_train_keeps_float32():
    X, T = bpkit.datasets.xor()
    net = bpkit.MLP([2, 3, 1], ["relu", "identity"], dtype=np.float32)
    bpkit.train(
        net, X.astype(np.float32), T.astype(np.float32), optim.Momentum(0.1), epochs=3, batch_size=2
    )
    assert all(p.dtype == np.float32 for p in net.params())


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(epochs=-1), r"epochs must be an int >= 0"),
        (dict(epochs=2.5), r"epochs must be an int >= 0"),
        (
            dict(batch_size=0),
            r"batch_size must be None \(full batch\) or an int from 1 to N = 4; given 0",
        ),
        (dict(batch_size=5), r"from 1 to N = 4; given 5"),
        (dict(loss="xent"), r"unknown loss 'xent'"),
        (dict(optimizer=0.1), r"optimizer must have a .step"),
        (dict(T=np.zeros((4, 2))), r"T has shape \(4, 2\)"),
        (dict(callback=3), r"callback must be callable"),
    ],
)
def test_train_rejects_bad_arguments(kwargs, pattern):
    X, T = bpkit.datasets.xor()
    args = dict(X=X, T=T, optimizer=optim.GradientDescent(0.1), epochs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        bpkit.train(bpkit.MLP([2, 2, 1], ["relu", "sigmoid"]), **args)


def test_interleave_order():
    assert interleave(["W0", "W1"], ["b0", "b1"]) == ["W0", "b0", "W1", "b1"]


@pytest.mark.parametrize(
    "make_opt, seed", [(lambda: optim.Rprop(lr0=0.1), 0), (lambda: optim.Quickprop(lr=0.5), 1)]
)
def test_rprop_and_quickprop_learn_xor(make_opt, seed):
    X, T = bpkit.datasets.xor()
    net = bpkit.MLP([2, 3, 1], ["sigmoid", "sigmoid"], seed=seed)
    h = bpkit.train(net, X, T, make_opt(), epochs=200, loss="sse")
    np.testing.assert_array_equal(net.predict(X), T[:, 0])
    assert h.loss[-1] < 1e-3


def test_zero_epochs():
    X, T = bpkit.datasets.xor()
    net = bpkit.MLP([2, 2, 1], ["relu", "sigmoid"])
    before = [p.copy() for p in net.params()]
    h = bpkit.train(net, X, T, optim.GradientDescent(0.1), epochs=0)
    assert h.loss == [] and h.epochs == 0 and h.updates == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, net.params()))
