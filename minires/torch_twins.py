"""The PyTorch twin of every op in minires.op_catalog: the same call, written with torch, for the float64
comparison of ``minires gradcheck`` and the float32 parity tests. Each twin takes torch tensors in the
catalog's input order and the catalog's parameters (NumPy arrays among them, e.g. running statistics, which
the twin updates in place as torch does). Importing this module imports torch."""
import numpy as np
import torch
import torch.nn.functional as TF


def _dims(axis, x):
    return tuple(range(x.ndim)) if axis is None else axis


def _tensor_or_none(array):
    return None if array is None else torch.from_numpy(array)  # shares memory: torch updates the array


def _shortcut_a(x, out_channels, stride):
    extra = out_channels - x.shape[1]
    return TF.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))


def _batch_norm(x, w, b, running_mean, running_var, training):
    return TF.batch_norm(x, _tensor_or_none(running_mean), _tensor_or_none(running_var), w, b, training=training)


TWINS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda x: -x,
    "pow": lambda x, exponent: x ** exponent,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "sum": lambda x, axis, keepdims: x.sum(dim=_dims(axis, x), keepdim=keepdims),
    "mean": lambda x, axis, keepdims: x.mean(dim=_dims(axis, x), keepdim=keepdims),
    "max": lambda x, axis, keepdims: torch.amax(x, dim=_dims(axis, x), keepdim=keepdims),
    "reshape": lambda x, shape: x.reshape(shape),
    "transpose": lambda x, axes: x.permute(axes),
    "flatten": lambda x, start_dim, end_dim: torch.flatten(x, start_dim, end_dim),
    "getitem": lambda x, index: x[index],
    "getitem_array": lambda x, index: x[torch.from_numpy(np.asarray(index))],
    "cat": lambda *ts, axis: torch.cat(ts, dim=axis),
    "pad": lambda x, pad, value: TF.pad(x, pad, value=value),
    "matmul": torch.matmul,
    "linear": TF.linear,
    "log_softmax": lambda x, axis: torch.log_softmax(x, dim=axis),
    "softmax": lambda x, axis: torch.softmax(x, dim=axis),
    "cross_entropy": lambda x, target, reduction: TF.cross_entropy(x, torch.from_numpy(target), reduction=reduction),
    "conv2d": TF.conv2d,
    "batch_norm": _batch_norm,
    "batch_norm_eval": _batch_norm,
    "max_pool2d": TF.max_pool2d,
    "avg_pool2d": TF.avg_pool2d,
    "adaptive_avg_pool2d": TF.adaptive_avg_pool2d,
    "residual_add": lambda out, shortcut, relu: torch.relu(out + shortcut) if relu else out + shortcut,
    "shortcut_a": _shortcut_a,
}
