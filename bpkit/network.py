"""A multi-layer perceptron: forward pass, backpropagation in matrix form, and the MLP class.

A network is three lists of equal length L (one entry per layer l = 0 .. L-1):
weights[l] (J_l, I_l), biases[l] (J_l,), activations[l] (a name); I_0 = columns of X and
I_{l+1} = J_l. Layer l computes A_l = Y_{l-1} W_l^T + b_l, Y_l = g_l(A_l) (Laux eqs 17-18),
with Y_{-1} = X. Backpropagation runs Laux eqs 20-22 from the output layer down.
"""

from dataclasses import dataclass, field

import numpy as np

from .activations import ACTIVATIONS, _float
from .activations import activation as _activation
from .layers import _backward, _forward, _matrix
from .losses import _check_name, _loss


# ----------------------------------------------------------------------------- validation
def _check_net(weights, biases, activations, X, T=None):
    """Check the whole network once; returns (weights, biases, acts, X, T) ready for the helpers."""
    for name, seq in (("weights", weights), ("biases", biases), ("activations", activations)):
        if isinstance(seq, (str, np.ndarray)) or not hasattr(seq, "__len__"):
            raise ValueError(
                f"{name} must be a list with one entry per layer; given {type(seq).__name__}"
            )
    L = len(weights)
    if L == 0 or len(biases) != L or len(activations) != L:
        raise ValueError(
            f"weights, biases and activations must have the same length >= 1 (one entry "
            f"per layer); given {len(weights)}, {len(biases)}, {len(activations)}"
        )
    acts = [_activation(a) for a in activations]
    X = _matrix("X", X, "(N, I_0)")
    weights = [_float(W) for W in weights]
    biases = [_float(b) for b in biases]
    fan_in, source = X.shape[1], "X"
    for l, (W, b) in enumerate(zip(weights, biases)):
        if W.ndim != 2:
            raise ValueError(f"weights[{l}] must be 2-D (J_{l}, I_{l}); given shape {W.shape}")
        if W.shape[1] != fan_in:
            raise ValueError(
                f"weights[{l}] has shape {W.shape} but layer {l} receives {fan_in} inputs "
                f"from {source}: expected ({W.shape[0]}, {fan_in})"
            )
        if b.shape != (W.shape[0],):
            raise ValueError(
                f"biases[{l}] has shape {b.shape} but weights[{l}] has shape {W.shape}: "
                f"expected ({W.shape[0]},)"
            )
        fan_in, source = W.shape[0], f"layer {l}"
    if T is not None:
        T = _float(T)
        expected = (X.shape[0], fan_in)
        if T.shape != expected:
            hint = "; use T.reshape(-1, 1) for one output" if T.shape == (X.shape[0],) else ""
            raise ValueError(
                f"T has shape {T.shape} but the network maps X {X.shape} to outputs of "
                f"shape {expected}: expected T of shape {expected}{hint}"
            )
        if not np.isfinite(T).all():
            raise ValueError("T must be finite: given values include nan or inf")
    return weights, biases, acts, X, T


# ----------------------------------------------------------------------------- forward / backward
@dataclass
class Trace:
    """Everything backprop computes, layer by layer (l = 0 .. L-1).

    inputs[l]  (N, I_l)  input of layer l (inputs[0] = X)
    A[l]       (N, J_l)  net input, Laux eq 17
    Y[l]       (N, J_l)  output, Laux eq 18 (Y[-1] = network output)
    deltas[l]  (N, J_l)  Delta_l = dE/dA_l, Laux eq 20 (Micheli's delta is -Delta)
    E          float     the loss
    dW[l] (J_l, I_l), db[l] (J_l,)  gradients, Laux eq 21 and the bias column
    """

    inputs: list = field(default_factory=list)
    A: list = field(default_factory=list)
    Y: list = field(default_factory=list)
    deltas: list = field(default_factory=list)
    E: float = 0.0
    dW: list = field(default_factory=list)
    db: list = field(default_factory=list)


def _trace(weights, biases, acts, X, T, loss):
    """trace() without input checks."""
    L = len(weights)
    tr = Trace(deltas=[None] * L, dW=[None] * L, db=[None] * L)
    Y = X
    for W, b, act in zip(weights, biases, acts):  # forward, input layer first
        tr.inputs.append(Y)
        A, Y = _forward(Y, W, b, act)  # Laux eqs 17-18
        tr.A.append(A)
        tr.Y.append(Y)
    tr.E, dE_dY = _loss(loss, Y, T)  # Laux eqs 19 and 13
    for l in reversed(range(L)):  # backward, output layer first; Laux eqs 20-21
        tr.deltas[l], tr.dW[l], tr.db[l] = _backward(dE_dY, tr.inputs[l], tr.A[l], acts[l])
        if l > 0:  # Laux eq 22; the first layer's dE/dX is not needed
            dE_dY = tr.deltas[l] @ weights[l]
    return tr


def _output(weights, biases, acts, X):
    """forward() without checks."""
    Y = X
    for W, b, act in zip(weights, biases, acts):
        Y = _forward(Y, W, b, act)[1]
    return Y


# The public functions below and the MLP methods do not call one another, so that the notebook
# checks can forbid any one of them without breaking the others.
def forward(weights, biases, activations, X):
    """Network output Y (N, J_L) for inputs X (N, I_0).  Laux eqs 17-18, layer after layer."""
    return _output(*_check_net(weights, biases, activations, X)[:4])


def trace(weights, biases, activations, X, T, loss="sse"):
    """Forward and backward pass keeping every intermediate array (Laux eqs 17-22): a Trace."""
    _check_name(loss)
    return _trace(*_check_net(weights, biases, activations, X, T), loss)


def backprop(weights, biases, activations, X, T, loss="sse"):
    """E, dW, db by backpropagation in matrix form (Laux eqs 17-22).

    X (N, I_0), T (N, J_L). Returns E (float), dW (list, dW[l] shaped like weights[l]),
    db (list, db[l] shaped like biases[l]). loss "sse" (1/2 sum) or "mse" (sse / N).
    """
    _check_name(loss)
    tr = _trace(*_check_net(weights, biases, activations, X, T), loss)
    return tr.E, tr.dW, tr.db


def interleave(dW, db):
    """[dW[0], db[0], dW[1], db[1], ...]: gradients in the order of MLP.params()."""
    return [g for pair in zip(dW, db) for g in pair]


# ----------------------------------------------------------------------------- MLP
class MLP:
    """A fully connected network with seeded initialisation.

    sizes [I_0, J_0, J_1, ..., J_{L-1}] (e.g. [2, 4, 1]); activations: one name per layer.
    weights[l] has shape (sizes[l+1], sizes[l]); biases start at 0.
    init: "xavier" (Glorot uniform, limit sqrt(6 / (fan_in + fan_out))), "he" (normal,
    std sqrt(2 / fan_in)) or a float (normal with that std). dtype: float64 or float32.
    """

    def __init__(self, sizes, activations, seed=0, init="xavier", dtype=np.float64):
        sizes = list(sizes) if hasattr(sizes, "__len__") else sizes
        if (
            not isinstance(sizes, list)
            or len(sizes) < 2
            or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                for s in sizes
            )
        ):
            raise ValueError(
                f"sizes must be a list of >= 2 positive ints like [2, 4, 1]; given {sizes!r}"
            )
        if (
            isinstance(activations, str)
            or not hasattr(activations, "__len__")
            or len(activations) != len(sizes) - 1
        ):
            raise ValueError(
                f"activations must list one name per layer ({len(sizes) - 1} for sizes "
                f"{sizes}), e.g. {['relu'] * (len(sizes) - 2) + ['identity']}; given {activations!r}"
            )
        self.activations = [_activation(a).name for a in activations]
        if dtype not in (np.float32, np.float64, "float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64; given {dtype!r}")
        rng = np.random.default_rng(seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            if init == "xavier":
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                W = rng.uniform(-limit, limit, size=(fan_out, fan_in))
            elif init == "he":
                W = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_out, fan_in))
            elif isinstance(init, (int, float)) and not isinstance(init, bool) and init >= 0:
                W = rng.normal(0.0, float(init), size=(fan_out, fan_in))
            else:
                raise ValueError(f"init must be 'xavier', 'he' or a std >= 0; given {init!r}")
            self.weights.append(W.astype(dtype))
            self.biases.append(np.zeros(fan_out, dtype=dtype))

    @property
    def sizes(self):
        return [self.weights[0].shape[1]] + [W.shape[0] for W in self.weights]

    def __repr__(self):
        return f"MLP(sizes={self.sizes}, activations={self.activations})"

    def forward(self, X):
        """Network output Y (N, J_L) for X (N, I_0).  Laux eqs 17-18."""
        return _output(*_check_net(self.weights, self.biases, self.activations, X)[:4])

    def trace(self, X, T, loss="sse"):
        """A Trace of the forward and backward pass (see bpkit.trace), Laux eqs 17-22."""
        _check_name(loss)
        return _trace(*_check_net(self.weights, self.biases, self.activations, X, T), loss)

    def backprop(self, X, T, loss="sse"):
        """(E, dW, db) by backpropagation, Laux eqs 17-22 (see bpkit.backprop)."""
        _check_name(loss)
        tr = _trace(*_check_net(self.weights, self.biases, self.activations, X, T), loss)
        return tr.E, tr.dW, tr.db

    def params(self):
        """[W0, b0, W1, b1, ...]: the live arrays (an optimizer updates them in place)."""
        return interleave(self.weights, self.biases)

    def copy(self):
        """An independent copy (arrays copied)."""
        new = MLP.__new__(MLP)
        new.activations = list(self.activations)
        new.weights = [W.copy() for W in self.weights]
        new.biases = [b.copy() for b in self.biases]
        return new

    def predict(self, X):
        """Class labels (N,): argmax over outputs, or output > 0.5 for a single output."""
        Y = _output(*_check_net(self.weights, self.biases, self.activations, X)[:4])
        return (Y[:, 0] > 0.5).astype(int) if Y.shape[1] == 1 else Y.argmax(axis=1)


__all__ = ["Trace", "forward", "trace", "backprop", "interleave", "MLP", "ACTIVATIONS"]
