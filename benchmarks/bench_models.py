"""Training-step time and peak memory, minires against PyTorch CPU in one run (see minires/bench/).

    python benchmarks/bench_models.py --json out.json --results benchmarks/RESULTS.md
    python benchmarks/bench_models.py --profile          # where ResNet-20's step spends its time

Same as ``minires bench``.
"""
import sys

from minires.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench"] + sys.argv[1:]))
