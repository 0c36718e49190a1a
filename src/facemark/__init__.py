"""facemark: facial landmarks (88-point face88 layout by default) you can train, clean, evaluate and ship."""

import os

# OpenMP thread pools (torch's) sleep while they wait instead of spinning: spinning threads collapse throughput
# when other processes load the CPU (benchmarks/results/speed.md). Read once, when the OpenMP runtime loads (at
# `import torch`), so it is set before anything imports torch; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from facemark.layouts import FACE88, IBUG68, Scheme, get_scheme  # noqa: E402

__version__ = "0.1.0"
__all__ = ["FACE88", "IBUG68", "Face", "Landmarker", "LandmarkerOptions", "Scheme", "get_scheme", "__version__"]


def __getattr__(name):
    # The API loads onnxruntime, OpenCV and the detector; import it on first use so `facemark --help` stays quick.
    if name == "LandmarkerOptions":
        from facemark.options import LandmarkerOptions
        return LandmarkerOptions
    if name in ("Landmarker", "Face"):
        from facemark import landmarker
        return getattr(landmarker, name)
    raise AttributeError(f"module 'facemark' has no attribute {name!r}")
