"""Build of the compiled inner loops (simulation engine, segmentation flood); everything else is in pyproject.toml.

The engine (services/simulation/core/native/engine.cpp) is C++17 with OpenMP, bound with
pybind11. ``NEUROMESH_ENGINE_MARCH`` picks the instruction set: ``native`` (the default: the
machine that builds it, as `pip install -e .` on a workstation or CI does) or a portable level
such as ``x86-64-v2`` for images that run on other machines (deploy/docker builds with it).
"""

import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

march = os.environ.get("NEUROMESH_ENGINE_MARCH", "native")
engine = Pybind11Extension(
    "services.simulation.core._engine",
    ["services/simulation/core/native/engine.cpp"],
    cxx_std=17,
    # -fno-math-errno lets the loops vectorise; no -ffast-math, which would break NaN checks and
    # reorder the sums that make results reproducible.
    extra_compile_args=["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", f"-march={march}"],
    extra_link_args=["-fopenmp"],
)

# The segmentation core's seeded watershed (bucket-queue priority flood): single-threaded and
# portable, so no -march (the flood is memory-bound; a wider instruction set buys nothing).
flood = Pybind11Extension(
    "services.segmentation.core._flood",
    ["services/segmentation/core/native/flood.cpp"],
    cxx_std=17,
    extra_compile_args=["-O3"],
)

setup(ext_modules=[engine, flood], cmdclass={"build_ext": build_ext})
