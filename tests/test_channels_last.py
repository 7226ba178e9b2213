"""Channels-last memory: whole networks in channels-last against NCHW, every op keeping the layout, and the
im2col fallback wherever the direct kernels do not apply (the direct kernels themselves: test_direct_conv.py)."""
import numpy as np
import pytest

import minires as mr
from minires import functional as F
from minires import kernels, models, nn, op_hooks
from minires.errors import ArgumentError
from minires.memory_format import conversions, only_channels_last

needs_direct = pytest.mark.skipif(kernels.cpu_flavour() != "numba",
                                  reason="the direct kernels run with the numba kernel flavour only")


def _network_run(name, channels_last, dtype=np.float32, size=16):
    model = models.get(name, num_classes=10, seed=0)
    if dtype == np.float64:
        model.double()
    x = mr.tensor(np.random.default_rng(1).standard_normal((4, 3, size, size)).astype(dtype))
    if channels_last:
        model.to(memory_format=mr.channels_last)
        x = x.contiguous(memory_format=mr.channels_last)
    logits = model(x)
    F.cross_entropy(logits, np.arange(4)).backward()
    return logits.numpy(), {name: p.grad.numpy() for name, p in model.named_parameters()}


@needs_direct
@pytest.mark.parametrize("name", ["resnet20", "resnet18", "preact_resnet20"])
def test_a_channels_last_network_is_as_accurate_as_the_nchw_network(name):
    """Whole networks in float32 differ from each other by rounding only, so both are measured against the
    float64 NCHW network: channels-last (direct kernels, NHWC batch-norm) may be no less accurate than
    NCHW (im2col), in the logits and in every parameter gradient."""
    exact_logits, exact_grads = _network_run(name, channels_last=False, dtype=np.float64)

    def errors(channels_last):
        logits, grads = _network_run(name, channels_last)
        worst = max(np.abs(grads[k] - g).max() / (np.abs(g).max() + 1e-12) for k, g in exact_grads.items())
        return np.abs(logits - exact_logits).max(), worst

    (nchw_logits, nchw_grads), (logits, grads) = errors(False), errors(True)
    assert logits <= 4 * nchw_logits + 1e-6
    assert grads <= 4 * nchw_grads + 1e-6


def test_a_float64_network_in_channels_last_falls_back_to_im2col_and_agrees_to_rounding():
    nchw_logits, nchw_grads = _network_run("resnet20", channels_last=False, dtype=np.float64)
    logits, grads = _network_run("resnet20", channels_last=True, dtype=np.float64)
    np.testing.assert_allclose(logits, nchw_logits, rtol=1e-12, atol=1e-12)
    for key, reference in nchw_grads.items():
        np.testing.assert_allclose(grads[key], reference, rtol=1e-9, atol=1e-12, err_msg=key)


def _layouts_of_a_step(name, size=16, fused=True):
    """(op, phase, [is channels-last per 4-D output]) for every op of one training step, and the ops that
    copied between layouts."""
    seen, converting = [], set()

    def record(node, phase, inputs, run):
        before = conversions.count
        outputs = run()
        if conversions.count > before:
            converting.add(node.op_name())
        arrays = outputs if isinstance(outputs, tuple) else (outputs,)
        planes = [a for a in arrays if a is not None and a.ndim == 4 and a.shape[1] > 1 and a.shape[2] * a.shape[3] > 1]
        if planes:
            seen.append((node.op_name(), phase, [only_channels_last(a) for a in planes]))
        return outputs

    model = nn.fuse(models.get(name, num_classes=10, seed=0).to(memory_format=mr.channels_last), fused)
    x = mr.randn(2, 3, size, size).contiguous(memory_format=mr.channels_last)
    handle = op_hooks.register(record)
    try:
        F.cross_entropy(model(x), np.arange(2)).backward()
    finally:
        handle.remove()
    return seen, converting


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_every_op_of_a_training_step_keeps_the_channels_last_layout(name, fused):
    seen, converting = _layouts_of_a_step(name, size=64 if name == "resnet18" else 16, fused=fused)
    ops = {op for op, _, _ in seen}
    assert {"conv2d", "batch_norm_relu"} <= ops if fused else {"conv2d", "batch_norm", "relu", "residual_add"} <= ops
    not_kept = [(op, phase) for op, phase, layouts in seen if not all(layouts)]
    assert not_kept == []
    assert "contiguous" not in ops
    # the global pool's kernels are NCHW-only (one per network): they convert each way, counted; so do the
    # im2col convolutions where the direct ones do not run (the reference flavour). Max-pool has its own.
    pooling = {"adaptive_avg_pool2d"}
    assert converting == (pooling if kernels.cpu_flavour() == "numba" else pooling | {"conv2d"})


@pytest.mark.parametrize("flavour", ["reference", "numba"])
def test_channels_last_max_pool_picks_the_same_winners_as_nchw(flavour):
    """Whole-number inputs tie often; overlapping windows share winners; padding never wins: the
    channels-last kernels give the NCHW kernels' output and gradient, with no layout copy."""
    if flavour == "numba" and not kernels.numba_available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (2, 5, 7, 6)).astype(np.float32)
    g = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    results = []
    with kernels.using(flavour):
        for layout in (mr.contiguous_format, mr.channels_last):
            xt = mr.tensor(x, requires_grad=True).contiguous(memory_format=layout)
            xt.retain_grad()
            upstream = mr.tensor(g).contiguous(memory_format=layout)
            before = conversions.count
            y = F.max_pool2d(xt, 3, 2, 1)
            y.backward(upstream)
            assert conversions.count == before
            assert y.is_contiguous(memory_format=layout) and xt.grad.is_contiguous(memory_format=layout)
            results.append((y.numpy(), xt.grad.numpy()))
    for nchw, nhwc in zip(*results):
        np.testing.assert_array_equal(nchw, nhwc)


@pytest.mark.parametrize("case", ["float64", "groups", "dilation", "nchw", "reference flavour"])
def test_the_im2col_convolution_runs_wherever_the_direct_kernels_do_not_apply(case, monkeypatch):
    rng = np.random.default_rng(0)
    dtype = np.float64 if case == "float64" else np.float32
    x = mr.tensor(rng.standard_normal((2, 16, 6, 6)).astype(dtype), requires_grad=True)
    if case != "nchw":
        x = x.contiguous(memory_format=mr.channels_last)
    groups, dilation = (2 if case == "groups" else 1), (2 if case == "dilation" else 1)
    weight = mr.tensor(rng.standard_normal((16, 16 // groups, 3, 3)).astype(dtype))
    if case == "reference flavour":
        monkeypatch.setenv("MINIRES_KERNELS", "reference")
    y = F.conv2d(x, weight, padding=1, dilation=dilation, groups=groups)
    assert type(y.grad_fn).__name__ == "Conv2d"


@needs_direct
def test_a_channels_last_weight_pulls_an_nchw_input_over_as_a_counted_op():
    """As torch: a network converted with Module.to(memory_format=...) runs channels-last even on an NCHW
    batch; the one conversion is an op of its own (``contiguous``) that the profiler sees."""
    layer = mr.nn.Conv2d(3, 16, 3, padding=1).to(memory_format=mr.channels_last)
    x = mr.randn(2, 3, 8, 8, requires_grad=True)
    y = layer(x)
    assert y.is_contiguous(memory_format=mr.channels_last)
    assert [type(f).__name__ for f, _ in y.grad_fn.next_functions if f is not None][0] == "Contiguous"
    y.sum().backward()
    assert x.grad.shape == x.shape


def test_contiguous_and_is_contiguous_follow_torch():
    x = mr.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    assert x.is_contiguous() and not x.is_contiguous(memory_format=mr.channels_last)
    y = x.contiguous(memory_format=mr.channels_last)
    assert y.is_contiguous(memory_format=mr.channels_last) and not y.is_contiguous()
    assert y.shape == (1, 2, 3, 4) and np.array_equal(y.numpy(), x.numpy())
    assert y.contiguous(memory_format=mr.channels_last) is y and x.contiguous() is x
    assert np.array_equal(y.contiguous().numpy(), x.numpy()) and y.contiguous().is_contiguous()
    with pytest.raises(ArgumentError, match="channels_last needs a 4-D"):
        mr.zeros(2, 3).contiguous(memory_format=mr.channels_last)
    with pytest.raises(ArgumentError, match="memory_format must be one of"):
        x.contiguous(memory_format="nhwc")


def test_the_gradient_passes_through_a_layout_change_unchanged():
    x = mr.randn(2, 3, 4, 5, dtype=np.float64, requires_grad=True)
    g = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    x.contiguous(memory_format=mr.channels_last).backward(mr.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), g)


def test_module_to_lays_out_four_dimensional_parameters_and_keeps_the_rest():
    model = models.get("resnet20", num_classes=10, seed=0)
    before = {k: v.numpy() for k, v in model.state_dict().items()}
    model.to(memory_format=mr.channels_last)
    for name, p in model.named_parameters():
        assert p.is_contiguous(memory_format=mr.channels_last if p.ndim == 4 else "contiguous_format"), name
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(ArgumentError, match="memory_format must be one of"):
        model.to(memory_format="NHWC")


@pytest.mark.parametrize("training", [True, False])
def test_channels_last_batch_norm_equals_nchw_batch_norm_with_its_running_statistics(training):
    """float64, any kernel flavour: output, dx, dgamma, dbeta and the running statistics, to rounding."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4, 6)) * 3 + 1
    g = rng.standard_normal(x.shape)
    mean, var, gamma, beta = rng.standard_normal(5), rng.random(5) + 0.5, rng.standard_normal(5), rng.standard_normal(5)
    results = []
    for channels_last in (False, True):
        layer = mr.nn.BatchNorm2d(5).double().train(training)
        layer.running_mean.array[:], layer.running_var.array[:] = mean, var
        layer.weight.array[:], layer.bias.array[:] = gamma, beta
        xt = mr.tensor(x, requires_grad=True)
        y = layer(xt.contiguous(memory_format=mr.channels_last) if channels_last else xt)
        assert y.is_contiguous(memory_format=mr.channels_last) == channels_last
        y.backward(mr.tensor(g))
        results.append([y.numpy(), xt.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy(),
                         layer.running_mean.numpy(), layer.running_var.numpy()])
    for ours, reference in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, reference, rtol=1e-11, atol=1e-12)


def test_channels_last_batch_norm_passes_gradcheck():
    rng = np.random.default_rng(1)
    x, gamma, beta = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal(3), rng.standard_normal(3)

    def normalise(x, gamma, beta):
        return F.batch_norm(x.contiguous(memory_format=mr.channels_last), None, None, gamma, beta, training=True)
    mr.gradcheck(normalise, [x, gamma, beta])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("with_residual", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_batch_norm_relu_equals_batch_norm_then_the_join(training, with_residual, channels_last):
    """The fused op (channels-last) and its unfused form (NCHW) against batch_norm + residual_add/relu,
    float64: output, every gradient (a random upstream one) and the running statistics."""
    rng = np.random.default_rng(2)
    x, r, g = rng.standard_normal((3, 5, 4, 6)), rng.standard_normal((3, 5, 4, 6)), rng.standard_normal((3, 5, 4, 6))
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    mean, var = rng.standard_normal(5), rng.random(5) + 0.5

    def run(fused):
        xt, rt = mr.tensor(x, requires_grad=True), mr.tensor(r, requires_grad=True)
        gt, bt = mr.tensor(gamma, requires_grad=True), mr.tensor(beta, requires_grad=True)
        stats = [mean.copy(), var.copy()]
        xin = xt.contiguous(memory_format=mr.channels_last) if channels_last else xt
        rin = (rt.contiguous(memory_format=mr.channels_last) if channels_last else rt) if with_residual else None
        if fused:
            y = F.batch_norm_relu(xin, gt, bt, *stats, training, residual=rin)
            assert (type(y.grad_fn).__name__ == "BatchNormReLU") == channels_last
        else:
            y = F.batch_norm(xin, *stats, gt, bt, training)
            y = F.residual_add(y, rin, relu=True) if with_residual else F.relu(y)
        y.backward(mr.tensor(g))
        grads = [xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()] + ([rt.grad.numpy()] if with_residual else [])
        return [y.numpy(), *grads, *stats]

    for ours, reference in zip(run(True), run(False)):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_batch_norm_relu_passes_gradcheck_on_channels_last_memory():
    rng = np.random.default_rng(3)
    x, r = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((2, 3, 3, 4))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)

    def fused(x, gamma, beta, r):
        cl = mr.channels_last
        return F.batch_norm_relu(x.contiguous(memory_format=cl), gamma, beta, None, None, training=True,
                                 residual=r.contiguous(memory_format=cl))
    mr.gradcheck(fused, [x, gamma, beta, r])


@pytest.mark.parametrize("name", ["resnet20", "plain20", "resnet18"])
def test_a_fused_network_equals_the_unfused_network(name):
    """nn.fuse: the same logits, gradients and running statistics (float64, channels-last)."""
    def run(fused):
        model = models.get(name, num_classes=10, seed=0).double().to(memory_format=mr.channels_last)
        mr.nn.fuse(model, fused)
        x = mr.tensor(np.random.default_rng(1).standard_normal((4, 3, 16, 16))).contiguous(memory_format=mr.channels_last)
        logits = model(x)
        F.cross_entropy(logits, np.arange(4)).backward()
        grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
        return logits.numpy(), grads, {k: v.numpy() for k, v in model.state_dict().items()}

    (logits, grads, state), (ref_logits, ref_grads, ref_state) = run(True), run(False)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-12)
    for key in ref_grads:
        np.testing.assert_allclose(grads[key], ref_grads[key], rtol=1e-10, atol=1e-12, err_msg=key)
    for key in ref_state:
        np.testing.assert_allclose(state[key], ref_state[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_a_residual_is_added_only_before_a_fused_relu():
    with pytest.raises(ArgumentError, match="only before a fused ReLU"):
        mr.nn.BatchNorm2d(3)(mr.randn(2, 3, 4, 4), residual=mr.randn(2, 3, 4, 4))
