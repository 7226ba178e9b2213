"""minires.distributed in one process, on a stand-in MPI communicator and stand-in NCCL bindings that record
what they are asked: the collectives each World method issues (and with which buffers, roots and types),
DistributedDataParallel's buckets, averages, event log, no_sync and unused-parameter error as a world of two
identical ranks sees them, the abort on an uncaught exception, and which process is a rank at all. The real
two-rank runs are in test_distributed.py; these reach the same code in milliseconds, and the NCCL code path,
which needs a GPU per rank, at all."""
import importlib
import inspect
import re
import sys
import types
import traceback

import numpy as np
import pytest
from mpi4py import MPI

import minires as mr
from minires import F, backend, distributed, nn
from minires.functional.sync_batchnorm import sync_batch_norm
from minires.distributed.data_parallel import _groups
from minires.errors import ArgumentError, AutogradError, MissingDependencyError, ShapeError

world_module = importlib.import_module("minires.distributed.world")  # the package exports world(), the function


class _Request:
    def __init__(self, log, done=True):
        self.log, self.done = log, done

    def wait(self):
        self.log.append("wait")

    def Test(self):
        return self.done


class FakeComm:
    """A communicator of ``size`` identical ranks seen from ``rank``: an allreduce sums ``size`` equal copies;
    a broadcast from another root writes ``root_value`` (when set) into the buffer."""

    def __init__(self, rank=0, size=2, arrive=True, root_value=None):
        self.rank, self.size, self.arrive, self.root_value = rank, size, arrive, root_value
        self.log = []

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Dup(self):
        self.log.append("Dup")
        return self

    def Iallreduce(self, sendbuf, array, op):
        assert sendbuf is MPI.IN_PLACE and op is MPI.SUM
        self.log.append(("Iallreduce", array.size))
        array *= self.size
        return _Request(self.log)

    def Bcast(self, array, root):
        self.log.append(("Bcast", array.shape, root, array.flags.c_contiguous))
        if self.root_value is not None and root != self.rank:
            array[...] = self.root_value

    def bcast(self, value, root):
        self.log.append(("bcast", value, root))
        return "uid-of-rank-0"

    def Barrier(self):
        self.log.append("Barrier")

    def Ibarrier(self):
        self.log.append("Ibarrier")
        return _Request(self.log, done=self.arrive)

    def Abort(self, code):
        self.log.append(("Abort", code))


def test_the_world_issues_each_collective_on_its_communicator():
    comm = FakeComm(rank=1, size=3, root_value=7.0)
    world = distributed.World(comm)
    assert (world.rank, world.size) == (1, 3) and comm.log == ["Dup"]
    a = np.ones(4)
    assert world.all_reduce(a) is a and list(a) == [3.0] * 4
    request = world.start_all_reduce(a)
    request.wait()
    assert list(a) == [9.0] * 4 and comm.log[-1] == "wait"
    b = np.zeros((2, 3))
    assert world.broadcast(b, root=2) is b and (b == 7.0).all() and comm.log[-1] == ("Bcast", (2, 3), 2, True)
    world.broadcast(b)
    assert comm.log[-1][2] == 0  # root 0 by default
    world.barrier()
    assert comm.log[-1] == "Barrier"
    world.abort(5)
    assert comm.log[-1] == ("Abort", 5)
    two = FakeComm(size=2)
    pair = distributed.World(two)
    pair.barrier(), pair.abort()
    assert two.log[-2:] == ["Barrier", ("Abort", 1)]  # two ranks are a world too; exit code 1 by default


def test_one_process_issues_no_collective():
    world = distributed.World(None)
    a = np.ones(3)
    assert world.all_reduce(a) is a and world.broadcast(a) is a and list(a) == [1.0] * 3
    world.start_all_reduce(a).wait()
    world.barrier(), world.abort(3)  # nothing to end: the process goes on
    assert world.all_arrive(0.0) and list(a) == [1.0] * 3


@pytest.mark.parametrize("arrive", [True, False])
def test_all_arrive_waits_on_a_barrier_of_its_own_communicator(arrive):
    comm = FakeComm(arrive=arrive)
    world = distributed.World(comm)
    assert world.all_arrive(0.05) is arrive
    assert comm.log == ["Dup", "Ibarrier"]


def test_an_uncaught_exception_on_a_rank_is_printed_once_with_its_rank_and_aborts_the_job(monkeypatch, capsys):
    comm = FakeComm(rank=1)
    monkeypatch.setattr(world_module, "_world", distributed.World(comm))
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        world_module._abort_on_exception(*sys.exc_info())
        kind, value, trace = sys.exc_info()
    err = capsys.readouterr().err
    assert err == "[rank 1] " + "".join(traceback.format_exception(kind, value, trace))
    assert err.count("RuntimeError: boom") == 1 and comm.log[-1] == ("Abort", 1)


def test_a_process_started_by_a_launcher_joins_its_world_and_aborts_on_exceptions(monkeypatch):
    comm = FakeComm(rank=1, size=2)
    monkeypatch.setattr(world_module, "_world", None)
    monkeypatch.setattr(world_module, "launched_by_mpi", lambda: True)
    monkeypatch.setattr(world_module, "_mpi_comm", lambda: comm)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    world = distributed.world()
    assert world is distributed.world() and world.comm is comm
    assert (distributed.get_rank(), distributed.get_world_size(), distributed.is_distributed()) == (1, 2, True)
    assert sys.excepthook is world_module._abort_on_exception
    a = np.ones(2)
    assert list(distributed.all_reduce(a)) == [2.0, 2.0]
    distributed.broadcast(a, root=1)
    assert comm.log[-1][2] == 1
    distributed.broadcast(a)
    assert comm.log[-1][2] == 0
    with distributed.single_process() as alone:
        assert distributed.world() is alone and not distributed.is_distributed()
    assert distributed.world() is world


def test_a_process_not_started_by_a_launcher_keeps_python_s_exception_hook(monkeypatch):
    monkeypatch.setattr(world_module, "_world", None)
    monkeypatch.setattr(world_module, "launched_by_mpi", lambda: False)
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    assert distributed.world().size == 1 and sys.excepthook is sys.__excepthook__


@pytest.mark.parametrize("variable", ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_NTASKS"])
def test_a_launcher_is_recognised_by_its_environment(variable, monkeypatch):
    for name in world_module._LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched_by_mpi()
    monkeypatch.setenv(variable, "2")
    assert distributed.launched_by_mpi()


def test_a_launched_process_without_mpi4py_is_told_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(MissingDependencyError, match=r"mpi4py is not installed: pip install 'minires-nn\[mpi\]'"):
        world_module._mpi_comm()


# --- NCCL on stand-in bindings ----------------------------------------------------------------------------

class FakeStream:
    ptr = 1234

    def __init__(self, log):
        self.log = log

    def synchronize(self):
        self.log.append("synchronize")


class FakeCuda:
    def __init__(self, log):
        self.log, self.stream = log, FakeStream(log)
        outer = self

        class Device:
            def __init__(self, index):
                self.index = index

            def use(self):
                outer.log.append(("device", self.index))

        class runtime:
            @staticmethod
            def getDeviceCount():
                return 2

        self.Device, self.runtime = Device, runtime

    def get_current_stream(self):
        return self.stream


class FakeNccl:
    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = "nccl-f32", "nccl-f64", "nccl-sum"

    def __init__(self, log):
        self.log = log
        outer = self

        class NcclCommunicator:
            def __init__(self, size, uid, rank):
                outer.log.append(("communicator", size, uid, rank))

            def allReduce(self, send, receive, count, dtype, op, stream):
                outer.log.append(("allReduce", send, receive, count, dtype, op, stream))

            def bcast(self, pointer, count, dtype, root, stream):
                outer.log.append(("bcast", pointer, count, dtype, root, stream))

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        return "uid-of-rank-0"


class FakeDeviceArray(np.ndarray):
    """A host array that says it lives on the GPU, with a device pointer."""

    @property
    def data(self):
        return type("Memory", (), {"ptr": 99})()


@pytest.mark.parametrize("rank", [0, 3])
def test_gpu_arrays_go_through_nccl_with_one_gpu_per_rank(rank, monkeypatch):
    log = []
    cupy = type("FakeCupy", (), {"cuda": FakeCuda(log)})()
    monkeypatch.setattr(backend, "xp_for", lambda device: cupy if device == "cuda" else np)
    monkeypatch.setattr(backend, "nccl", lambda: FakeNccl(log))
    monkeypatch.setattr(backend, "device_of", lambda a: "cuda" if isinstance(a, FakeDeviceArray) else "cpu")
    comm = FakeComm(rank=rank, size=4)
    world = distributed.World(comm)
    a32, a64 = np.zeros(5, np.float32).view(FakeDeviceArray), np.zeros(3).view(FakeDeviceArray)
    request = world.start_all_reduce(a32)
    assert log == [("device", rank % 2), ("communicator", 4, "uid-of-rank-0", rank),
                   ("allReduce", 99, 99, 5, "nccl-f32", "nccl-sum", 1234)]
    assert comm.log[-1] == ("bcast", "uid-of-rank-0" if rank == 0 else None, 0)
    request.wait()
    assert log[-1] == "synchronize"
    world.broadcast(a64, root=2)
    assert log[-2:] == [("bcast", 99, 3, "nccl-f64", 2, 1234), "synchronize"]
    world.all_reduce(a64)
    assert log[-2:] == [("allReduce", 99, 99, 3, "nccl-f64", "nccl-sum", 1234), "synchronize"]
    assert sum(1 for entry in log if entry[0] == "communicator") == 1  # made once, on first use


# --- DistributedDataParallel in a world of two identical ranks ----------------------------------------------

def _net():
    mr.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 5)).double()


def _data():
    rng = np.random.default_rng(0)
    return mr.tensor(rng.standard_normal((4, 2, 4, 4))), np.array([0, 1, 4, 2])


def _grads(model):
    return {name: p.grad.numpy().copy() for name, p in model.named_parameters()}


def test_two_identical_ranks_average_to_the_single_process_gradients_bucket_by_bucket():
    x, y = _data()
    alone = _net()
    F.cross_entropy(alone(x), y).backward()
    comm = FakeComm(size=2)
    ddp = distributed.DistributedDataParallel(_net(), bucket_cap_mb=0.0005, world=distributed.World(comm))
    assert len(ddp.buckets) > 2
    F.cross_entropy(ddp(x), y).backward()
    for name, grad in _grads(alone).items():  # each rank's sum of two equal gradients, divided by 2
        np.testing.assert_allclose(_grads(ddp.module)[name], grad, rtol=1e-14, err_msg=name)
    starts = [event for event in ddp.events if event[0] == "allreduce started"]
    assert sorted(index for _, index in starts) == list(range(len(ddp.buckets)))  # each bucket once
    assert ddp.events[-1] == ("allreduce finished", len(ddp.buckets)) and len(ddp.events) == len(starts) + 1
    sizes = [entry[1] for entry in comm.log if entry[0] == "Iallreduce"]
    assert sizes == [sum(p.numel() for p in ddp.buckets[index].params) for _, index in starts]
    assert comm.log.count("wait") == len(ddp.buckets)
    F.cross_entropy(ddp(x), y).backward()  # a second step starts again from the first bucket
    assert [e for e in ddp.events if e[0] == "allreduce finished"] == [("allreduce finished", len(ddp.buckets))] * 2


def test_the_communication_time_adds_up_every_bucket(one_second_per_reading):
    """With a clock that advances one second per reading, each bucket's start costs exactly one second."""
    one_second_per_reading(importlib.import_module("minires.distributed.data_parallel"))
    x, y = _data()
    ddp = distributed.DistributedDataParallel(_net(), bucket_cap_mb=0.0005, world=distributed.World(FakeComm(size=2)))
    assert ddp.communication_seconds == 0.0
    F.cross_entropy(ddp(x), y).backward()
    assert ddp.communication_seconds == len(ddp.buckets)


def test_no_sync_sums_locally_and_the_next_backward_averages_the_sum():
    x, y = _data()
    comm = FakeComm(size=2)
    ddp = distributed.DistributedDataParallel(_net(), world=distributed.World(comm))
    with ddp.no_sync():
        F.cross_entropy(ddp(x), y).backward()
    assert ddp.events == [] and not any(e[0] == "Iallreduce" for e in comm.log if isinstance(e, tuple))
    once = _grads(ddp.module)
    assert ddp._synchronising
    F.cross_entropy(ddp(x), y).backward()
    for name, grad in _grads(ddp.module).items():
        np.testing.assert_allclose(grad, 2 * once[name], rtol=1e-13, err_msg=name)


def test_a_parameter_left_out_of_the_loss_is_named_at_the_next_forward():
    x, y = _data()
    model = _net()
    ddp = distributed.DistributedDataParallel(model, world=distributed.World(FakeComm(size=2)))
    features = model[0](x)  # the BatchNorm and Linear parameters take no part
    (features * features).sum().backward()
    with pytest.raises(AutogradError, match=r"^DistributedDataParallel: the last backward did not reach every "
                                            r"parameter, so its gradients were not averaged; parameters without a "
                                            r"gradient: 1.weight, 1.bias, 4.weight, 4.bias. Every parameter must "
                                            r"take part in the loss.$"):
        ddp(x)


def test_the_unused_parameter_error_names_eight_at_most():
    mr.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(6)]).double()
    ddp = distributed.DistributedDataParallel(model, world=distributed.World(FakeComm(size=2)))
    x = mr.tensor(np.ones((1, 2)))
    model[0](x).sum().backward()  # 10 parameters take no part
    with pytest.raises(AutogradError) as error:
        ddp(x)
    named = re.search("without a gradient: (.*). Every", str(error.value)).group(1).split(", ")
    assert named == [f"{i}.{kind}" for i in range(1, 6) for kind in ("weight", "bias")][:8]


def test_the_default_bucket_cap_is_torch_s_25_mb():
    assert inspect.signature(distributed.DistributedDataParallel).parameters["bucket_cap_mb"].default == 25.0


def test_buckets_fill_up_to_exactly_the_cap():
    """A cap equal to the bytes of the first two parameters (in reverse registration order) makes a bucket of
    exactly those two: the cap is inclusive, as "at most cap_bytes" says."""
    model = _net()
    reversed_params = list(reversed(list(model.parameters())))
    cap = sum(p.array.nbytes for p in reversed_params[:2])
    ddp = distributed.DistributedDataParallel(model, bucket_cap_mb=cap / 2**20, world=distributed.World(None))
    assert [len(b.params) for b in ddp.buckets][0] == 2
    sizes = [p.array.nbytes for p in reversed_params]
    exact = _groups(reversed_params, sizes[0] + sizes[1])
    assert [len(g) for g in exact][0] == 2
    after = _groups(reversed_params[2:4], sizes[2] + sizes[3])
    assert [len(g) for g in after] == [2]
    fake = [types.SimpleNamespace(array=np.zeros(1, np.float32)) for _ in range(5)]  # 4 bytes each
    assert [len(g) for g in _groups(fake, 8)] == [2, 2, 1]  # every bucket counts its own bytes from zero


def test_buffers_come_from_rank_0_before_each_training_forward_and_at_the_start():
    x, y = _data()
    mr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1),
                          nn.BatchNorm2d(3)).double().to(memory_format=mr.channels_last)  # a counter between
    model[1].running_mean.array[...] = 3.0
    comm = FakeComm(rank=1, size=2, root_value=0.5)
    ddp = distributed.DistributedDataParallel(model, world=distributed.World(comm))
    params_and_buffers = len(list(model.parameters())) + sum(1 for b in model.buffers() if b.array.ndim)
    assert sum(1 for e in comm.log if isinstance(e, tuple) and e[0] == "Bcast") == params_and_buffers
    assert (model[0].weight.numpy() == 0.5).all() and model[0].weight.array.strides == \
        mr.tensor(np.zeros((3, 2, 3, 3))).contiguous(memory_format=mr.channels_last).array.strides
    model[1].running_mean.array[...] = 3.0
    before = len(comm.log)
    ddp.eval()
    ddp(x)
    assert len(comm.log) == before and (model[1].running_mean.numpy() == 3.0).all()  # eval: no broadcast
    ddp.train()
    ddp(x)
    broadcasts = [e for e in comm.log[before:] if isinstance(e, tuple) and e[0] == "Bcast"]
    assert len(broadcasts) == 4 and all(e[2] == 0 for e in broadcasts)  # running means and vars; counters stay
    assert model[1].num_batches_tracked.numpy() > 0


def test_ddp_refuses_a_cap_that_is_not_positive_and_parameters_of_two_dtypes():
    for cap in (0, -1):
        with pytest.raises(ArgumentError, match=rf"^DistributedDataParallel: bucket_cap_mb must be positive, got {cap}$"):
            distributed.DistributedDataParallel(_net(), bucket_cap_mb=cap, world=distributed.World(None))
    model = _net()
    model[4].float()
    with pytest.raises(ArgumentError, match=r"^DistributedDataParallel: the parameters must share one dtype \(one flat "
                                            r"buffer per bucket\)$"):
        distributed.DistributedDataParallel(model, world=distributed.World(None))


def test_the_sampler_refuses_a_rank_outside_the_world():
    for replicas, rank in [(0, 0), (2, 2), (2, -1)]:
        with pytest.raises(ArgumentError, match=rf"^DistributedSampler: rank {rank} is not one of {replicas} replicas$"):
            distributed.DistributedSampler(replicas, rank)
    assert distributed.DistributedSampler(1, 0).shard(np.arange(3)).tolist() == [0, 1, 2]
    assert distributed.DistributedSampler(2, 0).shard(np.arange(4)).tolist() == [0, 2]
    sampler = distributed.DistributedSampler(3, 2, drop_last=True)
    assert (sampler.num_replicas, sampler.rank, sampler.drop_last) == (3, 2, True)
    assert sampler.shard_size(10) == 3 and distributed.DistributedSampler(3, 2).shard_size(10) == 4


# --- SyncBatchNorm in a world of two ranks holding the same half-batch ----------------------------------------

@pytest.mark.parametrize("fused", [False, True])
def test_sync_batch_norm_over_two_equal_halves_is_batch_norm_of_the_whole_batch(fused):
    """Two ranks holding the same x make the global batch [x; x]: SyncBatchNorm on one rank equals BatchNorm2d
    on [x; x] for that half (y, dx, d(residual)), in the running statistics (the unbiased variance of 2N
    values), and in the parameter gradients, which stay this rank's own: half of the whole batch's."""
    rng = np.random.default_rng(2)
    x, upstream, residual = (rng.standard_normal((3, 4, 5, 2)) * 2 + 1 for _ in range(3))
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)

    def run(layer, x, upstream, residual):
        layer.double()
        layer.weight.array[...], layer.bias.array[...] = gamma, beta
        layer.running_var.array[...] = 2.0
        xt, rt = mr.tensor(x, requires_grad=True), mr.tensor(residual, requires_grad=True)
        y = layer(xt, rt, relu=True) if fused else layer(xt)
        y.backward(mr.tensor(upstream))
        result = dict(y=y.numpy()[:3], dx=xt.grad.numpy()[:3], mean=layer.running_mean.numpy(),
                      var=layer.running_var.numpy(), dgamma=layer.weight.grad.numpy(), dbeta=layer.bias.grad.numpy())
        return dict(result, dr=rt.grad.numpy()[:3]) if fused else result

    comm = FakeComm(size=2)
    ours = run(nn.SyncBatchNorm(4, momentum=0.3, world=distributed.World(comm)), x, upstream, residual)
    twice = lambda a: np.concatenate([a, a])
    whole = run(nn.BatchNorm2d(4, momentum=0.3), twice(x), twice(upstream), twice(residual))
    whole["dgamma"], whole["dbeta"] = whole["dgamma"] / 2, whole["dbeta"] / 2
    for name, value in whole.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-10, atol=1e-12, err_msg=name)
    assert [entry[1] for entry in comm.log if entry[0] == "Iallreduce"] == [2 * 4 + 1, 2 * 4]  # one each way


def test_sync_batch_norm_in_evaluation_uses_the_running_statistics_without_collectives():
    comm = FakeComm(size=2)
    layer = nn.SyncBatchNorm(3, world=distributed.World(comm)).double().eval()
    layer.running_mean.array[...], layer.running_var.array[...] = [1.0, 2.0, 3.0], [4.0, 1.0, 0.25]
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    expected = (x - np.array([1.0, 2.0, 3.0])[:, None, None]) / np.sqrt(np.array([4.0, 1.0, 0.25]) + 1e-5)[:, None, None]
    np.testing.assert_allclose(layer(mr.tensor(x)).numpy(), expected, rtol=1e-12)
    assert not any(isinstance(entry, tuple) and entry[0] == "Iallreduce" for entry in comm.log)
    with pytest.raises(ArgumentError, match=r"^SyncBatchNorm: a residual is added only before a fused ReLU \(relu=True\)$"):
        layer(mr.tensor(x), mr.tensor(x))
    np.testing.assert_allclose(layer(mr.tensor(x), relu=True).numpy(), np.maximum(expected, 0), rtol=1e-12)


def test_the_sync_batch_norm_op_keeps_batch_norm_s_defaults_and_names_itself():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 2, 2)) * 3 + 1
    ours, theirs = (np.zeros(3), np.ones(3)), (np.zeros(3), np.ones(3))
    xt = mr.tensor(x, requires_grad=True)
    y = sync_batch_norm(xt, None, None, *ours, training=True, world=distributed.World(None))
    assert y.grad_fn.op_name() == "sync_batch_norm"
    expected = F.batch_norm(mr.tensor(x), *theirs, None, None, training=True)  # momentum 0.1, eps 1e-5
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(ShapeError, match=r"^sync_batch_norm: running_mean must have shape \(3,\)"):
        sync_batch_norm(xt, None, None, np.zeros(2), np.ones(3), training=True, world=distributed.World(None))
