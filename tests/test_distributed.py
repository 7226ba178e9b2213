"""Data parallelism over MPI, on two ranks of this machine (mpiexec from the mpich wheel; .ci/run installs
the mpi extra). tests/distributed_run.py is what each rank runs; here its results are compared with one
process doing the same work on the whole batch."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import distributed_run
import minires as mr
from minires import F, distributed, models, nn, optim
from minires.cli import train as train_cli

SCRIPT = pathlib.Path(distributed_run.__file__)
ONE_THREAD_PER_RANK = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")  # two ranks on two cores


def _mpi_ready():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return shutil.which("mpiexec") is not None


needs_mpi = pytest.mark.skipif(not _mpi_ready(), reason="needs mpi4py and mpiexec (pip install -e '.[mpi]')")


def _mpiexec(mode, out, ranks=2, timeout=180):
    return subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, str(SCRIPT), mode, str(out)],
                          capture_output=True, text=True, timeout=timeout)


def _ranks(tmp_path, mode):
    result = _mpiexec(mode, tmp_path / mode)
    assert result.returncode == 0, result.stderr[-3000:]
    return [dict(np.load(tmp_path / f"{mode}.rank{r}.npz")) for r in range(2)]


def _single_process(sync_batchnorm, per_half):
    """The same three steps in one process on the whole batch of 32; with ``per_half``, the batch-norm
    statistics of each half as two ranks with their own statistics compute them (running statistics:
    rank 0's half, which DistributedDataParallel broadcasts before every forward)."""
    images, labels = distributed_run.data()
    with distributed.single_process():
        model = models.get("resnet20", num_classes=10, seed=0).double()
        if sync_batchnorm:
            model = nn.convert_sync_batchnorm(model)
        optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
        half = distributed_run.GLOBAL_BATCH // 2
        for _ in range(distributed_run.STEPS):
            if per_half:
                saved = [b.array.copy() for b in model.buffers()]
                loss_1 = F.cross_entropy(model(mr.tensor(images[half:])), labels[half:])
                for buffer, value in zip(model.buffers(), saved):
                    buffer.array[...] = value
                loss = (F.cross_entropy(model(mr.tensor(images[:half])), labels[:half]) + loss_1) * 0.5
            else:
                loss = F.cross_entropy(model(mr.tensor(images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def _assert_close(ours, expected, keys=None):
    for key in keys or expected:
        scale = np.abs(expected[key]).max() + 1e-30
        np.testing.assert_allclose(ours[key], expected[key], rtol=1e-10, atol=1e-10 * scale, err_msg=key)


@needs_mpi
def test_two_ranks_with_sync_batchnorm_equal_one_process_on_the_whole_batch(tmp_path):
    """2 ranks x 16 with SyncBatchNorm = 1 rank x 32 after 3 SGD steps, float64, to 1e-10: every weight and
    running statistic, on both ranks."""
    ranks = _ranks(tmp_path, "sync")
    expected = _single_process(sync_batchnorm=True, per_half=False)
    for state in ranks:
        _assert_close(state, expected)


@needs_mpi
def test_two_ranks_with_their_own_batchnorm_equal_one_process_with_per_half_statistics(tmp_path):
    ranks = _ranks(tmp_path, "per_rank")
    expected = _single_process(sync_batchnorm=False, per_half=True)
    _assert_close(ranks[0], expected)
    weights = [k for k in expected if not k.endswith(("running_mean", "running_var"))]
    _assert_close(ranks[1], expected, weights)  # rank 1's own running statistics are its half's


@needs_mpi
def test_the_allreduce_of_early_buckets_starts_before_backward_ends(tmp_path):
    """The ordered log of the last step's backward on rank 0: DDP's bucket starts interleave with the ops'
    backward; the first bucket starts while ops remain, and the wait for all comes after the last op."""
    events = list(_ranks(tmp_path, "overlap")[0]["events"])
    ops = [i for i, e in enumerate(events) if e.startswith("backward:")]
    starts = [i for i, e in enumerate(events) if e.startswith("allreduce started")]
    assert len(starts) > 2, events
    assert starts[0] < ops[-1] and starts[1] < ops[-1], events
    assert events[-1].startswith("allreduce finished") and events.index(events[-1]) > ops[-1]


@needs_mpi
def test_no_sync_accumulates_locally_and_the_next_backward_averages_the_sum(tmp_path):
    """Two micro-batches of 8 per rank, the first inside no_sync(): every rank ends with the average over
    the ranks of its summed micro-batch gradients, i.e. the sum of the four micro-batch gradients / 2."""
    ranks = _ranks(tmp_path, "no_sync")
    images, labels = distributed_run.data()
    with distributed.single_process():
        model = distributed_run.small_net()
        for quarter in range(4):
            rows = slice(quarter * 8, (quarter + 1) * 8)
            F.cross_entropy(model(mr.tensor(images[rows])), labels[rows]).backward()
        expected = {name: p.grad.numpy() / 2 for name, p in model.named_parameters()}
    for state in ranks:
        _assert_close(state, expected)


@needs_mpi
def test_a_rank_that_fails_ends_the_job_at_once_with_one_message(tmp_path):
    result = _mpiexec("fault", tmp_path / "fault", timeout=120)  # a hang ends in TimeoutExpired
    assert result.returncode != 0
    assert result.stderr.count("RuntimeError: an injected fault on rank 1") == 1, result.stderr[-3000:]
    assert result.stderr.count("[rank 1] Traceback") == 1 and "[rank 0]" not in result.stderr


@needs_mpi
@pytest.mark.gpu
def test_the_collectives_on_cupy_arrays_go_through_nccl(tmp_path):
    import cupy
    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("NCCL needs a GPU per rank: two GPUs for two ranks")
    for state in _ranks(tmp_path, "nccl"):
        assert list(state["summed"]) == [3.0] * 5 and list(state["shared"]) == [1.0] * 3


def test_sync_batchnorm_in_one_process_is_batchnorm():
    """Forward, the three gradients under a random upstream gradient, and the running statistics."""
    rng = np.random.default_rng(0)
    x, upstream = rng.standard_normal((6, 4, 5, 3)) * 3 + 1, rng.standard_normal((6, 4, 5, 3))
    results = []
    for layer in (nn.BatchNorm2d(4), nn.SyncBatchNorm(4)):
        layer.double()
        layer.weight.array[...] = rng.standard_normal(4) if not results else results[0][-1]
        xt = mr.tensor(x, requires_grad=True)
        with distributed.single_process():
            y = layer(xt)
        (y * mr.tensor(upstream)).sum().backward()
        results.append([y.numpy(), xt.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy(),
                        layer.running_mean.numpy(), layer.running_var.numpy(), layer.weight.numpy()])
    for name, ours, theirs in zip(["y", "dx", "dgamma", "dbeta", "running_mean", "running_var"], results[1],
                                  results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * np.abs(theirs).max(), err_msg=name)


def test_without_mpi_the_world_is_one_process_and_ddp_changes_nothing():
    with distributed.single_process() as world:
        assert (world.rank, world.size) == (0, 1)
        a = np.arange(3.0)
        assert distributed.all_reduce(a) is a and list(a) == [0, 1, 2]
        model = models.get("resnet20", num_classes=10, seed=0).double()
        wrapped = distributed.DistributedDataParallel(models.get("resnet20", num_classes=10, seed=0).double())
        x = mr.tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)))
        for m in (model, wrapped):
            F.cross_entropy(m(x), np.arange(4)).backward()
        theirs = dict(wrapped.module.named_parameters())
        for key, p in model.named_parameters():
            np.testing.assert_array_equal(p.grad.numpy(), theirs[key].grad.numpy())


@pytest.mark.parametrize("n, ranks, drop_last", [(10, 2, False), (11, 2, False), (11, 3, False), (11, 3, True)])
def test_the_sampler_gives_every_rank_a_disjoint_equal_shard_of_the_epoch(n, ranks, drop_last):
    """Together the shards are the epoch's order, padded by its start (or cut, drop_last) as torch's; the
    ranks' k-th batches of b hold exactly the single-process k-th batch of b * ranks."""
    order = np.random.default_rng(0).permutation(n)
    shards = [distributed.DistributedSampler(ranks, r, drop_last).shard(order) for r in range(ranks)]
    assert len({len(s) for s in shards}) == 1
    together = np.stack(shards, axis=1).ravel()
    total = len(shards[0]) * ranks
    assert list(together) == list(np.resize(order, total) if total > n else order[:total])
    if not drop_last:
        assert set(together) == set(order)
    b = 2
    for k in range(len(shards[0]) // b):
        assert sorted(np.concatenate([s[k * b:(k + 1) * b] for s in shards])) == sorted(together[k * b * ranks:(k + 1) * b * ranks])


def test_a_global_batch_that_does_not_divide_among_the_ranks_is_refused():
    from minires.training import TrainConfig, build
    world = distributed.World(None)
    world.size, world.rank = 3, 0
    with pytest.raises(mr.errors.ArgumentError, match="--batch-size 128 is the global batch and must divide among the 3"):
        build.build_loaders(TrainConfig(batch_size=128), build.build_data(TrainConfig(data="synthetic")), world)


@needs_mpi
def test_mpiexec_minires_train_runs_with_rank_0_writing_and_resumes(tmp_path):
    run = tmp_path / "run"
    command = ["mpiexec", "-n", "2", sys.executable, "-m", "minires", "train", "--data", "digits", "--epochs", "1",
               "--batch-size", "64", "--quiet", "--out", str(run)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ONE_THREAD_PER_RANK)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("training resnet20") == 1 and result.stdout.count("done: 1 epochs") == 1
    assert (run / "checkpoint.safetensors").exists() and (run / "model.safetensors").exists()
    resumed = subprocess.run(command[:7] + ["--resume", str(run), "--epochs", "2", "--quiet"], capture_output=True,
                             text=True, timeout=300, env=ONE_THREAD_PER_RANK)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "done: 2 epochs" in resumed.stdout


@needs_mpi
def test_a_diverging_distributed_run_stops_every_rank_with_one_message(tmp_path):
    result = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "minires", "train", "--data", "digits",
                             "--lr", "1e6", "--schedule", "constant", "--epochs", "2", "--batch-size", "64", "--quiet",
                             "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                            env=ONE_THREAD_PER_RANK)
    assert result.returncode == 1
    assert result.stderr.count("minires train: ") == 1, result.stderr
    assert "non-finite" in result.stderr or "loss became" in result.stderr
    # every rank met the same verdict, so the job ended without MPI_Abort (which can drop unforwarded output)
    assert "MPI_Abort" not in result.stderr, result.stderr


@needs_mpi
def test_minires_bench_distributed_reports_the_allreduce_and_the_efficiency():
    result = subprocess.run([sys.executable, "-m", "minires", "bench", "--distributed", "--batch", "16", "--size", "8",
                             "--repeats", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "allreduce ms" in result.stdout and "scaling efficiency" in result.stdout


def test_post_accumulate_grad_hooks_see_each_accumulated_grad_of_a_leaf():
    """The hook DDP starts its buckets from (torch's name): called after .grad has been added to, once per
    backward; refused on a tensor that is not a leaf requiring grad; removable."""
    w = mr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    for _ in range(2):
        (w * mr.tensor(np.array([3.0, 4.0]))).sum().backward()
    assert [list(s) for s in seen] == [[3.0, 4.0], [6.0, 8.0]]
    handle.remove()
    (w * 1.0).sum().backward()
    assert len(seen) == 2
    with pytest.raises(mr.errors.AutogradError, match="only a leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(print)


@pytest.mark.parametrize("cap_mb", [0.004, 0.02, 0.25, 25.0])
def test_buckets_hold_at_most_the_cap_unless_a_parameter_alone_is_larger(cap_mb):
    """On ResNet-20's real parameters (1.2 KB to 147 KB): every parameter in exactly one bucket, in reverse
    registration order; a bucket over the cap holds one parameter; a bucket is closed only when the next
    parameter would not fit (so the buckets are no more than they must be)."""
    model = models.get("resnet20", num_classes=10, seed=0)
    with distributed.single_process():
        ddp = distributed.DistributedDataParallel(model, bucket_cap_mb=cap_mb)
    cap = cap_mb * 2**20
    buckets = [bucket.params for bucket in ddp.buckets]
    assert [id(p) for bucket in buckets for p in bucket] == [id(p) for p in reversed(list(model.parameters()))]
    assert [bucket.index for bucket in ddp.buckets] == list(range(len(buckets)))
    nbytes = [sum(p.array.nbytes for p in bucket) for bucket in buckets]
    for size, bucket in zip(nbytes, buckets):
        assert size <= cap or len(bucket) == 1, (size, cap, len(bucket))
    for size, following in zip(nbytes, buckets[1:]):
        assert size + following[0].array.nbytes > cap
    if cap_mb == 25.0:
        assert len(buckets) == 1


@pytest.mark.parametrize("training", [True, False])
def test_convert_sync_batchnorm_keeps_each_module_s_mode_its_tensors_and_the_output(training):
    """Converted in training or in eval mode (one block left in the other mode), every module keeps its
    mode, every batch-norm its own parameter and buffer tensors (an optimiser built before still updates
    them), and the output and running statistics stay those of the unconverted model."""
    x = mr.tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)))
    models_ = [models.get("resnet20", num_classes=10, seed=0).double() for _ in range(2)]
    for model in models_:
        model(x)  # running statistics away from their initial values
        model.train(training)
        model.layer2[1].train(not training)
    plain, converted = models_
    tensors = {name: t for name, t in [*converted.named_parameters(), *converted.named_buffers()]}
    with distributed.single_process():
        converted = nn.convert_sync_batchnorm(converted)
        assert type(converted.layer1[0].bn1) is nn.SyncBatchNorm and type(converted.bn1) is nn.SyncBatchNorm
        assert [m.training for _, m in converted.named_modules()] == [m.training for _, m in plain.named_modules()]
        assert all(t is tensors[name] for name, t in [*converted.named_parameters(), *converted.named_buffers()])
        ours = converted(x).numpy()
    np.testing.assert_allclose(ours, plain(x).numpy(), rtol=1e-12, atol=1e-12)
    for (name, a), b in zip(converted.named_buffers(), plain.buffers()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("training", [True, False])
def test_a_lone_batch_norm_converts_to_a_sync_batch_norm_in_its_mode(training):
    layer = nn.BatchNorm2d(3, eps=1e-3, momentum=0.3).train(training)
    converted = nn.convert_sync_batchnorm(layer)
    assert type(converted) is nn.SyncBatchNorm and converted.training is training
    assert (converted.num_features, converted.eps, converted.momentum) == (3, 1e-3, 0.3)
    assert converted.weight is layer.weight and converted.running_var is layer.running_var


class _FakeWorld:
    def __init__(self, rank, arrive):
        self.rank, self.arrive, self.aborted = rank, arrive, None

    def all_arrive(self, seconds):
        return self.arrive

    def abort(self, code):
        self.aborted = code


@pytest.mark.parametrize("rank, arrive, printed, aborted", [
    (0, True, "minires train: bad flag\n", None),  # a shared verdict: rank 0 speaks, nobody aborts
    (1, True, "", None),
    (0, False, "minires train: bad flag\n", 2),  # some rank elsewhere: each failed rank speaks and aborts
    (1, False, "minires train: bad flag (rank 1)\n", 2),
])
def test_a_failed_run_ends_every_rank_normally_when_they_all_arrive_and_aborts_otherwise(rank, arrive, printed,
                                                                                         aborted, capsys):
    fake = _FakeWorld(rank, arrive)
    train_cli._end_together(fake, 2, "minires train: bad flag")
    assert capsys.readouterr().err == printed and fake.aborted == aborted
