"""Training loop: batch, online and minibatch gradient descent (Laux eq 3; Micheli's batch and
online versions).

  batch_size=None  full batch: one update per epoch from the gradient over all N patterns
                   (the mean, Laux eq 3, with loss="mse"; the sum E_tot = sum_p E_p, Micheli,
                   with loss="sse")
  batch_size=1     online / stochastic: N updates per epoch, one per pattern
  batch_size=M     minibatch: ceil(N / M) updates per epoch (the last batch may be smaller)
"""

from dataclasses import dataclass, field

import numpy as np

from .losses import _check_name
from .network import _check_net, _trace, interleave


@dataclass
class History:
    """What happened during training.

    loss        loss on the whole training set after each epoch
    grad_norms  per epoch, the list of ||dW_l|| (Frobenius, whole training set) for each layer l
    epochs      number of epochs run;  updates  number of optimizer steps taken
    """

    loss: list = field(default_factory=list)
    grad_norms: list = field(default_factory=list)
    epochs: int = 0
    updates: int = 0


def train(
    net, X, T, optimizer, epochs, batch_size=None, loss="mse", shuffle=True, seed=0, callback=None
):
    """Train net (an MLP) on X (N, I_0), T (N, J_L) for `epochs` epochs; returns a History.

    optimizer: any object with .step(params, grads) (see bpkit.optim). shuffle: visit the
    patterns in a new random order each epoch (seeded by `seed`; minibatch and online only).
    callback(epoch, net, history), called after each epoch (epoch = 1, 2, ...), may return True
    to stop early.
    """
    _check_name(loss)
    weights, biases, acts, X, T = _check_net(net.weights, net.biases, net.activations, X, T)
    if not hasattr(optimizer, "step"):
        raise ValueError(
            f"optimizer must have a .step(params, grads) method; given {type(optimizer).__name__}"
        )
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0; given {epochs!r}")
    N = X.shape[0]
    if batch_size is not None and (
        not isinstance(batch_size, (int, np.integer))
        or isinstance(batch_size, bool)
        or not 1 <= batch_size <= N
    ):
        raise ValueError(
            f"batch_size must be None (full batch) or an int from 1 to N = {N}; given {batch_size!r}"
        )
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None; given {type(callback).__name__}")

    rng = np.random.default_rng(seed)
    M = N if batch_size is None else batch_size
    history = History()
    params = net.params()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(N) if shuffle and M < N else np.arange(N)
        for start in range(0, N, M):
            rows = order[start : start + M]
            Xb, Tb = (X, T) if M == N else (X[rows], T[rows])
            tr = _trace(net.weights, net.biases, acts, Xb, Tb, loss)
            optimizer.step(params, interleave(tr.dW, tr.db))
            history.updates += 1
        tr = _trace(net.weights, net.biases, acts, X, T, loss)
        history.loss.append(tr.E)
        history.grad_norms.append([float(np.linalg.norm(dW)) for dW in tr.dW])
        history.epochs = epoch
        if callback is not None and callback(epoch, net, history) is True:
            break
    return history
