"""Backpropagation one pattern, one unit, one weight at a time, to read next to the texts.

Same inputs and same numbers as bpkit.backprop (the matrix form), but written with explicit
loops and Laux's names: for a unit j fed by units i of the layer below,

    a_j = sum_i w_ji x_i + b_j                      Laux eq 6 (b_j: weight from a bias unit = 1)
    x_j = g(a_j)                                    Laux eq 6
    delta_k = dE/dy_k g'(a_k)                       Laux eq 12; = (y_k - t_k) g'(a_k) (eq 13-14)
    delta_i = g'(a_i) sum_j delta_j w_ji            Laux eq 15 (hidden unit i)
    dE/dw_ji = delta_j x_i                          Laux eq 16

Micheli writes the same with delta_t = -dE_p/dnet_t (the opposite sign): Case 1 (output)
delta_k = (d_k - o_k) f'_k(net_k), Case 2 (hidden) delta_j = (sum_k delta_k w_kj) f'_j(net_j),
Delta_p w_tu = delta_t o_u. Over patterns the gradients add up: E_tot = sum_p E_p (Micheli);
for loss="mse" everything is divided by N (the mean of Laux eq 3).
"""

import numpy as np

from .losses import _check_name
from .network import _check_net


def backprop(weights, biases, activations, X, T, loss="sse"):
    """E, dW, db exactly like bpkit.backprop, computed with Python loops (slow; for reading)."""
    _check_name(loss)
    weights, biases, acts, X, T = _check_net(weights, biases, activations, X, T)
    L = len(weights)
    N = X.shape[0]
    scale = 1.0 / N if loss == "mse" else 1.0  # "mse" = "sse" / N
    dW = [np.zeros_like(W) for W in weights]
    db = [np.zeros_like(b) for b in biases]
    E = 0.0

    for n in range(N):  # one pattern at a time
        # ---- forward pass: x[l] = outputs of the units feeding layer l (x[0] = the pattern)
        x = [list(X[n])]
        a = []
        for l in range(L):
            W, b, g = weights[l], biases[l], acts[l].g
            J, I = W.shape
            a_l, x_next = [], []
            for j in range(J):
                a_j = b[j]  # bias unit: weight b_j times 1
                for i in range(I):
                    a_j += W[j, i] * x[l][i]  # a_j = sum_i w_ji x_i      (eq 6)
                a_l.append(a_j)
                x_next.append(g(a_j))  # x_j = g(a_j)              (eq 6)
            a.append(a_l)
            x.append(x_next)
        y, t = x[L], T[n]

        # ---- error of this pattern, E^(n) = 1/2 sum_k (y_k - t_k)^2              (eq 1)
        E_n = 0.0
        for k in range(len(y)):
            E_n += 0.5 * (y[k] - t[k]) ** 2
        E += scale * E_n

        # ---- output units: delta_k = (y_k - t_k) g'(a_k)         (eqs 12-14, Micheli Case 1)
        delta = [None] * L
        g_prime = acts[L - 1].g_prime
        delta[L - 1] = [scale * (y[k] - t[k]) * g_prime(a[L - 1][k]) for k in range(len(y))]

        # ---- hidden units: delta_i = g'(a_i) sum_j delta_j w_ji   (eq 15, Micheli Case 2)
        for l in range(L - 2, -1, -1):
            W_up, g_prime = weights[l + 1], acts[l].g_prime
            delta[l] = []
            for i in range(W_up.shape[1]):  # unit i of layer l
                s = 0.0
                for j in range(W_up.shape[0]):  # every unit j of layer l+1 it feeds
                    s += delta[l + 1][j] * W_up[j, i]
                delta[l].append(g_prime(a[l][i]) * s)

        # ---- gradients: dE/dw_ji = delta_j x_i, summed over patterns              (eq 16)
        for l in range(L):
            J, I = weights[l].shape
            for j in range(J):
                db[l][j] += delta[l][j]  # the bias unit's output is 1
                for i in range(I):
                    dW[l][j, i] += delta[l][j] * x[l][i]
    return float(E), dW, db
