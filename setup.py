"""Package discovery; the metadata, dependencies and entry points live in setup.cfg.

Packages are found, not listed, so a new subpackage can never be left out of the wheel. The one mapping:
the top-level folder kernels/ is installed as the subpackage minires.kernels (see DESIGN.md)."""
from setuptools import find_packages, setup

ENGINE = find_packages(include=["minires", "minires.*"])
KERNELS = ["minires.kernels"] + [f"minires.kernels.{name}" for name in find_packages("kernels")]

setup(packages=ENGINE + KERNELS, package_dir={"minires.kernels": "kernels"},
      package_data={"minires.kernels.cuda": ["*.cu"]})  # the CUDA C sources NVRTC compiles at run time
