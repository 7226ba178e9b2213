"""The GPU benchmark: minires' CUDA kernels and training step against PyTorch on the same GPU.

    python benchmarks/bench_gpu.py [--batches 128 512] [--steps 20] [--results benchmarks/RESULTS.md]
    python benchmarks/bench_gpu.py --dry-run      # the whole script on tests/cupy_on_cpu.py, tiny sizes

1. Kernels: each CUDA kernel (and the GEMM of a convolution) on ResNet-56's first-stage shapes at the largest
   batch, timed by CUDA events, median of repetitions, with the bytes it must move (each array it reads or
   writes once) and the achieved GB/s; the GEMM also in GFLOP/s.
2. Steps: a ResNet-20 and a ResNet-56 training step (forward, cross-entropy, backward, SGD with momentum) at
   each batch, float32, median over ``--steps`` steps: minires eager (with the step's one read of the loss),
   minires captured as a CUDA graph where capture works (else why not), and torch eager with
   cudnn.benchmark=True, TF32 off and on reported apart. Ratios are minires / torch with TF32 off.
3. Launches per step: counted on the CPU stand-in of tests/cupy_on_cpu.py (where tests/ and g++ are here).

--dry-run runs every line above on the CPU stand-in (timings meaningless, torch skipped): CI runs it, so the
script works the day a GPU runs it. benchmarks/gpu_day.sh runs this with the GPU tests and compute-sanitizer.
"""
import argparse
import contextlib
import datetime
import pathlib
import statistics
import sys

import numpy as np

import minires as mr
from minires import F, backend, kernels, models, nn, optim
from minires.training.trainer import step_report, watched_tensors

TESTS = pathlib.Path(__file__).resolve().parent.parent / "tests"
MODELS = ("resnet20", "resnet56")


# --- timing ---------------------------------------------------------------------------------------------

def median_ms(cupy, run, repeats):
    """Median over ``repeats`` of one call of ``run``, timed by CUDA events around it (milliseconds)."""
    run()  # warm: modules compiled, workspaces allocated
    times = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return statistics.median(times)


# --- 1. kernels ------------------------------------------------------------------------------------------

def kernel_rows(cupy, batch, repeats):
    """(name, shape, ms, MB moved, GB/s, GFLOP/s or None) for each kernel on ResNet-56's first stage."""
    rng = np.random.default_rng(0)
    n, c, h = batch, 16, 32
    size = n * c * h * h

    def device(*shape):
        return cupy.asarray(rng.standard_normal(shape).astype(np.float32))

    x, y, g = device(n, c, h, h), device(n, c, h, h), device(n, c, h, h)
    x3, gamma, beta = x.reshape(n, c, -1), device(c), device(c)
    stats = (device(c), cupy.abs(device(c)) + 1, 0.1)
    mean, inv_std = device(c), cupy.abs(device(c)) + 1
    weight = device(c, c * 9)
    model = models.get("resnet56", num_classes=10).to("cuda")
    params = [p.array.ravel() for p in model.parameters()]
    grads = [cupy.ones_like(p) for p in params]
    buffers = [cupy.zeros_like(p) for p in params]
    parameter_bytes = sum(p.nbytes for p in params)
    window = (3, 3, 1, 1, 1, 1, 1, 1)
    columns = kernels.pick("im2col_rows", cupy)(x, *window)
    column_bytes = columns.nbytes
    k, columns_2d = c * 9, columns.reshape(c * 9, -1)
    scalars = tuple(map(np.float32, (0.1, 0.9, 1.0, 5e-4)))
    rows = [  # name, run, bytes moved, flops
        ("residual_add_forward (+ReLU)", lambda: kernels.pick("residual_add_forward", cupy)(x, y, True), 3 * 4 * size, None),
        ("relu_backward", lambda: kernels.pick("relu_backward", cupy)(g, y), 3 * 4 * size, None),
        ("batch-norm training forward (2 launches)",
         lambda: kernels.pick("batchnorm_forward_train", cupy)(x3, gamma, beta, 1e-5, running=stats), 4 * 4 * size, None),
        ("batch-norm training backward (2 launches)",
         lambda: kernels.pick("batchnorm_backward", cupy)(g.reshape(n, c, -1), x3, gamma, mean, inv_std), 5 * 4 * size,
         None),
        ("batch-norm+ReLU backward (2 launches)",
         lambda: kernels.pick("batchnorm_relu_backward", cupy)(g.reshape(n, c, -1), y.reshape(n, c, -1), x3, gamma, mean,
                                                               inv_std, True), 7 * 4 * size, None),
        ("im2col_rows 3x3", lambda: kernels.pick("im2col_rows", cupy)(x, *window), column_bytes + 4 * size, None),
        ("col2im_rows 3x3", lambda: kernels.pick("col2im_rows", cupy)(columns, h, h, 1, 1, 1, 1, 1, 1),
         column_bytes + 4 * size, None),
        ("GEMM W @ col (cuBLAS)", lambda: cupy.matmul(weight, columns_2d), weight.nbytes + column_bytes + 4 * size,
         2 * c * k * n * h * h),
        ("sgd_update_many (all ResNet-56 parameters)",
         lambda: kernels.pick("sgd_update_many", cupy)(params, grads, buffers, *scalars, True, [False] * len(params)),
         5 * parameter_bytes, None),
        ("count_non_finite (all ResNet-56 parameters)", lambda: kernels.pick("count_non_finite", cupy)(params),
         parameter_bytes, None),
    ]
    shape = f"{n}x{c}x{h}x{h}"
    out = []
    for name, run, moved, flops in rows:
        ms = median_ms(cupy, run, repeats)
        out.append((name, shape, ms, moved / 1e6, moved / ms / 1e6, flops / ms / 1e6 if flops else None))
    return out


# --- 2. training steps -----------------------------------------------------------------------------------

def minires_step(name, batch):
    """(eager step, step without the read of the loss) for a float32 fused model on the GPU."""
    rng = np.random.default_rng(0)
    model = nn.fuse(models.get(name, num_classes=10, seed=0)).to("cuda")
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    watched = watched_tensors(model)
    images = mr.Tensor(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), device="cuda")
    targets = backend.to_device(rng.integers(0, 10, batch), "cuda")

    def compute():
        logits = model(images)
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss, logits

    def eager():
        loss, logits = compute()
        step_report(loss, logits, targets, watched)

    return eager, compute


def captured_ms(cupy, compute, repeats):
    """The step captured as a CUDA graph and replayed: (ms, None), or (None, why capture failed)."""
    try:
        compute()  # buffers exist before capture
        stream = cupy.cuda.Stream(non_blocking=True)
        with stream:
            stream.begin_capture()
            compute()
            graph = stream.end_capture()
        return median_ms(cupy, lambda: graph.launch(stream), repeats), None
    except Exception as exc:  # noqa: BLE001  (a host read, an upload from pageable memory: capture refuses)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:90] if str(exc) else ''}"


def torch_step_ms(name, batch, tf32, repeats):
    import torch

    from minires.verify import torch_reference

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    model = torch_reference.build(name).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    images = torch.randn(batch, 3, 32, 32, device="cuda")
    targets = torch.randint(0, 10, (batch,), device="cuda")

    def step():
        loss = torch.nn.functional.cross_entropy(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()

    step()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def step_rows(cupy, names, batches, repeats, with_torch):
    rows = []
    for name in names:
        for batch in batches:
            eager, compute = minires_step(name, batch)
            ms = median_ms(cupy, eager, repeats)
            graph_ms, why = captured_ms(cupy, compute, repeats)
            torch_off = torch_step_ms(name, batch, False, repeats) if with_torch else None
            torch_on = torch_step_ms(name, batch, True, repeats) if with_torch else None
            rows.append((name, batch, ms, graph_ms, why, torch_off, torch_on))
    return rows


# --- 3. launches -------------------------------------------------------------------------------------------

def launches_per_step():
    """(launches, waits, MB moved per image) of a ResNet-56 step at batch 2 on tests/cupy_on_cpu.py, or None."""
    sys.path.insert(0, str(TESTS))
    try:
        import cupy_on_cpu
    except ImportError:
        return None
    counts = []
    for batch in (2, 4):
        with cupy_on_cpu.installed() as device:
            eager, _ = minires_step("resnet56", batch)
            eager()
            device.reset()
            eager()
            counts.append((device.launch_count, len(device.syncs), device.bytes_moved))
    return counts[0][0], counts[0][1], (counts[1][2] - counts[0][2]) / 2 / 1e6


# --- the report ------------------------------------------------------------------------------------------

def report(device_name, kernel_table, steps, launches):
    lines = [f"### GPU benchmark, {device_name} ({datetime.date.today()}, `python benchmarks/bench_gpu.py`)", "",
             "| kernel | shape | ms (median) | MB moved | GB/s | GFLOP/s |", "|---|---|---:|---:|---:|---:|"]
    for name, shape, ms, mb, gbs, gflops in kernel_table:
        lines.append(f"| {name} | {shape} | {ms:.3f} | {mb:.1f} | {gbs:.0f} | {'' if gflops is None else f'{gflops:.0f}'} |")
    lines += ["", "| model | batch | minires eager ms | minires graph ms | torch ms (TF32 off) | torch ms (TF32 on) "
              "| minires / torch (TF32 off) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, batch, ms, graph_ms, why, torch_off, torch_on in steps:
        graph = f"{graph_ms:.2f}" if graph_ms is not None else f"capture failed ({why})"
        ratio = f"{ms / torch_off:.2f}" if torch_off else "-"
        torch_cells = " | ".join("-" if t is None else f"{t:.2f}" for t in (torch_off, torch_on))
        lines.append(f"| {name} | {batch} | {ms:.2f} | {graph} | {torch_cells} | {ratio} |")
    if launches:
        lines += ["", f"ResNet-56 training step: {launches[0]} launches, {launches[1]} wait(s) for the device "
                      f"(tests/cupy_on_cpu.py); {launches[2]:.1f} MB moved per image by its launches."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--steps", type=int, default=20, help="timed repetitions per row (median)")
    parser.add_argument("--results", help="append the tables to this markdown file")
    parser.add_argument("--dry-run", action="store_true", help="run on the CPU stand-in at tiny sizes")
    args = parser.parse_args(argv)
    context = contextlib.nullcontext()
    if args.dry_run:
        sys.path.insert(0, str(TESTS))
        import cupy_on_cpu
        context = cupy_on_cpu.installed()
        args.batches, args.steps = [2], 2
    with context:
        cupy = backend.xp_for("cuda")  # DeviceUnavailableError, saying why, without a GPU
        name = "CPU stand-in (dry run)" if args.dry_run else cupy.cuda.runtime.getDeviceProperties(
            cupy.cuda.runtime.getDevice())["name"].decode()
        kernel_table = kernel_rows(cupy, max(args.batches), args.steps)
        steps = step_rows(cupy, args.models, args.batches, args.steps, with_torch=not args.dry_run)
    launches = launches_per_step()
    text = report(name, kernel_table, steps, launches)
    print(text)
    if args.results and not args.dry_run:
        with open(args.results, "a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
