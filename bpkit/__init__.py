"""bpkit: backpropagation in NumPy, written to be read next to four course texts.

Conventions (Laux's matrix form): X (N, I) one pattern per row, W (J, I) with W[j, i] = w_ji the
weight into unit j from unit i, b (J,); A = X W^T + b and Y = g(A) (Laux eqs 17-18). The loss
"sse" is E = 1/2 sum (Y - T)^2 (Laux, Micheli), "mse" is sse / N (Frermann).
bpkit's deltas are Laux's Delta = dE/dA.

The same quantities in the four texts (Laux / Betke / Frermann / Micheli):

    net input of unit j    a_j          sigma        z_i              net_t
    output of unit j       x_j = g(a_j) o_j = f(sigma) a_i = g(z_i)   o_t = f_t(net_t)
    target, net output     t_k, y_k     d_z, o_z     y, yhat          d_k, o_k
    weight into j from i   w_ji         w_{i->j}     theta_ij (into i) w_tu (into t from u)
    objective              E=1/2 sum(y-t)^2  P=-sum(d-o)^2 (max)  E=1/(2N) sum(...)^2  E_tot=sum_p E_p
    error signal           delta = +dE/da    beta = dP/do (output!)  delta = -dE/dz   delta = -dE/dnet
    update                 w -= eta delta x  w += r o_i o_j(1-o_j) beta_j  theta += eta delta a  w += eta delta o

Modules: activations, losses, layers (one layer), network (forward, trace, backprop, MLP),
unitwise (the same backprop with loops), gradcheck, optim, train, datasets; bpkit.symbolic
checks every derivative with SymPy (``python -m bpkit.symbolic``). The course support (visible
checks, the symbolic-answer checker, plotting) is in bpkit.course, imported on request
(``from bpkit.course import checks``).
"""

from . import datasets, optim, unitwise
from .activations import (
    ACTIVATIONS,
    Activation,
    activation,
    identity,
    identity_prime,
    relu,
    relu_prime,
    sigmoid,
    sigmoid_prime,
    tanh,
    tanh_prime,
)
from .gradcheck import gradient_check, numerical_gradient, relative_error
from .layers import dense_backward, dense_forward
from .losses import LOSSES, loss
from .network import MLP, Trace, backprop, forward, trace
from .train import History, train

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "activation",
    "identity",
    "identity_prime",
    "sigmoid",
    "sigmoid_prime",
    "relu",
    "relu_prime",
    "tanh",
    "tanh_prime",
    "LOSSES",
    "loss",
    "dense_forward",
    "dense_backward",
    "forward",
    "trace",
    "Trace",
    "backprop",
    "MLP",
    "numerical_gradient",
    "relative_error",
    "gradient_check",
    "train",
    "History",
    "optim",
    "datasets",
    "unitwise",
]
