"""The benchmark and profiler machinery (tiny sizes; timings are never asserted, only that they exist)."""

from minires import bench as benchmark
from minires.cli import main


def test_a_benchmark_row_times_both_engines_and_measures_memory():
    results = benchmark.run([("resnet20", 2, 8)], repeats=1, warmup=0, memory=True, progress=lambda line: None)
    (row,) = results["rows"]
    assert row["minires_s"] > 0 and row["torch_s"] > 0 and row["ratio"] == row["minires_s"] / row["torch_s"]
    assert row["minires_peak_mib"] > 10 and row["torch_peak_mib"] > 10
    assert "| resnet20 | 2 | 8x8 |" in benchmark.markdown(results)


def test_the_engines_train_the_same_network():
    ours, model = benchmark.minires_step("resnet20", 4, 8)
    theirs = benchmark.torch_step("resnet20", 4, 8, weights=model.state_dict())
    assert abs(ours() - theirs()) < 1e-4  # same weights, same batch: the same first loss


def test_profile_accounts_for_every_op_and_the_rest():
    rows, total_ms, (conversions, _) = benchmark.profile("resnet20", batch=2, size=8, steps=1,
                                                         memory_format="contiguous_format")
    assert conversions == 0
    names = {(op, phase) for op, phase, *_ in rows}
    assert {("conv2d", "forward"), ("conv2d", "backward"), ("batch_norm", "backward"),
            ("SGD.step", "update"), ("(python overhead)", "-")} <= names
    assert abs(sum(r[4] for r in rows) - 1.0) < 0.05 and total_ms > 0


def test_bench_cli_profile(capsys):
    assert main(["bench", "--profile", "--batch", "2", "--size", "8"]) == 0
    out = capsys.readouterr().out
    assert "conv2d" in out and "(python overhead)" in out
    from minires.kernels.direct import isa
    assert out.startswith(f"CPU: {isa.cpu_model()}") and f"direct kernels for {isa.current().name}" in out

