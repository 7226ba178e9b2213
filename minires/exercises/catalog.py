"""The exercises: for each, how to draw its inputs (float64, away from kinks and ties), the geometries it is
checked at, the same computation written with an engine's functional API (minires' — which runs minires'
kernels — or torch's, so the expected values and gradients come from both), and a hint per wrong answer."""
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Exercise:
    name: str
    inputs: tuple[str, ...]            # forward's positional inputs, in order
    draw: Callable                     # rng -> list of float64 arrays, one per input
    engine: Callable                   # (F, tensors, options) -> output, with F = minires' or torch's functional
    hints: dict                        # "forward" and each gradient name ("dx", ...) -> what to look at
    cases: tuple = ({},)               # keyword options for forward (geometries), each checked
    summary: str = ""

    @property
    def gradients(self):
        """What backward returns, in order: "dx" for input "x", ..."""
        return tuple("d" + name for name in self.inputs)


def _away_from_zero(rng, shape, margin=0.2):
    """Standard normal values with |v| >= margin: a kink of relu sits at 0, and finite differences of a
    function with a kink between x - eps and x + eps measure nothing."""
    values = rng.standard_normal(shape)
    return np.where(np.abs(values) < margin, np.sign(values + 1e-300) * margin + values, values)


def _distinct(rng, shape, spacing=0.1):
    """Values at least ``spacing`` apart (a shuffled ladder): no ties in any max-pool window, so the winner
    cannot change under a finite-difference step."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * spacing


def _draw_pool(rng):
    """Distinct values with each plane's largest on row 2, where the 3x3 windows of stride 2 overlap: it wins
    two or four windows, so a backward that assigns (=) instead of adding (+=) is caught."""
    x = _distinct(rng, (2, 2, 5, 5))
    for plane, values in enumerate(x.reshape(4, 5, 5)):
        top = np.unravel_index(values.argmax(), values.shape)
        spot = (2, 1 + plane % 3)
        values[top], values[spot] = values[spot], values[top]
    return [x]


def _draw_residual_block(rng):
    """x, w1, w2 with every relu input (x W1^T and F(x) + x) at least 0.05 away from 0."""
    while True:
        x, w1, w2 = rng.standard_normal((4, 6)), 0.5 * rng.standard_normal((5, 6)), 0.5 * rng.standard_normal((6, 5))
        h = x @ w1.T
        joined = np.maximum(h, 0) @ w2.T + x
        if min(np.abs(h).min(), np.abs(joined).min()) > 0.05:
            return [x, w1, w2]


def _draw_join(rng):
    shortcut = rng.standard_normal((2, 3, 4, 4))
    return [_away_from_zero(rng, shortcut.shape) - shortcut, shortcut]  # branch + shortcut away from 0


def _batch_norm(F, x, gamma, beta):
    return F.batch_norm(x, None, None, gamma, beta, True, 0.1, 1e-5)


EXERCISES = {e.name: e for e in [
    Exercise("relu", ("x",), lambda rng: [_away_from_zero(rng, (4, 5))],
             lambda F, t, o: F.relu(t[0]),
             {"forward": "y = max(x, 0), elementwise: np.maximum(x, 0)",
              "dx": "relu passes dy where x > 0 and blocks it (0) elsewhere: dx = dy * (x > 0); keep that mask "
                    "(or y) in the cache"},
             summary="y = max(x, 0)"),
    Exercise("linear", ("x", "w", "b"),
             lambda rng: [rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)],
             lambda F, t, o: F.linear(*t),
             {"forward": "y = x @ w.T + b: w is (OUT, IN) as in PyTorch",
              "dx": "dx = dy @ w: (N, OUT) times (OUT, IN)",
              "dw": "dw = dy.T @ x, shape (OUT, IN) like w (x.T @ dy would be its transpose)",
              "db": "b is added to every row: db = dy.sum(axis=0)"},
             summary="y = x W^T + b"),
    Exercise("residual_join", ("branch", "shortcut"), _draw_join,
             lambda F, t, o: F.relu(t[0] + t[1]),
             {"forward": "y = relu(branch + shortcut)",
              "dbranch": "an addition copies its upstream gradient to both inputs; the relu after it masks it: "
                         "dbranch = dy * (y > 0)",
              "dshortcut": "the shortcut gets exactly what the branch gets: dshortcut = dy * (y > 0), not scaled, "
                           "not halved"},
             summary="y = relu(F + shortcut)"),
    Exercise("residual_block", ("x", "w1", "w2"), _draw_residual_block,
             lambda F, t, o: F.relu(F.linear(F.relu(F.linear(t[0], t[1])), t[2]) + t[0]),
             {"forward": "y = relu(relu(x @ w1.T) @ w2.T + x): the branch, then the join with x itself",
              "dx": "x is used twice, by the branch and by the shortcut: dx = (gradient through the branch) + "
                    "(gradient through the shortcut). Forgetting either term is the classic fan-out bug",
              "dw1": "dw1 = dh.T @ x with dh = (dbranch @ w2) * (x @ w1.T > 0)",
              "dw2": "dw2 = dbranch.T @ relu(x @ w1.T) with dbranch = dy * (y > 0)"},
             summary="y = relu(F(x) + x), F(x) = relu(x W1^T) W2^T"),
    Exercise("batchnorm", ("x", "gamma", "beta"),
             lambda rng: [2 * rng.standard_normal((4, 3, 2, 2)) + 1, rng.standard_normal(3), rng.standard_normal(3)],
             lambda F, t, o: _batch_norm(F, *t),
             {"forward": "per channel: mean and biased variance over axes (0, 2, 3); x_hat = (x - mean) / "
                         "sqrt(var + eps); y = gamma x_hat + beta (gamma and beta broadcast as (1, C, 1, 1))",
              "dx": "the mean and the variance depend on x too: with K = N*H*W values per channel, dx = gamma / "
                    "sqrt(var + eps) / K * (K dy - sum(dy) - x_hat sum(dy x_hat)), sums per channel. dy * gamma / "
                    "std alone is the evaluation-mode gradient",
              "dgamma": "dgamma = sum of dy * x_hat over axes (0, 2, 3)",
              "dbeta": "dbeta = sum of dy over axes (0, 2, 3)"},
             summary="training-mode batch-norm over (N, C, H, W)"),
    Exercise("conv2d", ("x", "w", "b"),
             lambda rng: [rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)],
             lambda F, t, o: F.conv2d(*t, stride=o["stride"], padding=o["padding"]),
             {"forward": "pad x, unfold every KH x KW window into a column (im2col: (C*KH*KW, N*OH*OW)), multiply "
                         "by w reshaped to (OC, C*KH*KW), add b, reshape to (N, OC, OH, OW)",
              "dx": "dcol = w_matrix.T @ dy_matrix, then col2im: add every column back onto the window it came "
                    "from (overlapping windows add up), and crop the padding",
              "dw": "dw = dy_matrix @ col.T, reshaped to (OC, C, KH, KW); the columns must be the forward's",
              "db": "db = dy.sum(axis=(0, 2, 3))"},
             cases=({"stride": 1, "padding": 1}, {"stride": 2, "padding": 0}),
             summary="convolution by im2col; dx by col2im"),
    Exercise("max_pool", ("x",), _draw_pool,
             lambda F, t, o: F.max_pool2d(t[0], o["kernel_size"], o["stride"]),
             {"forward": "y = the maximum of each window; remember where it was (its index) for backward",
              "dx": "only each window's winner gets that output's gradient (others 0); where windows overlap, "
                    "a winner of several windows gets the sum (+=, not =)"},
             cases=({"kernel_size": 2, "stride": 2}, {"kernel_size": 3, "stride": 2}),
             summary="max pooling; overlapping windows in the second case"),
]}
