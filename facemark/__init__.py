"""facemark: facial landmarks (88-point face88 layout by default) you can train, clean, evaluate and ship."""

from facemark.scheme import FACE88, IBUG68, Scheme, get_scheme

__version__ = "0.1.0"
__all__ = ["FACE88", "IBUG68", "Face", "Landmarker", "Scheme", "get_scheme", "__version__"]


def __getattr__(name):
    # The API pulls in torch; import it on first use so `facemark --help` and the data tools stay quick.
    if name in ("Landmarker", "Face"):
        from facemark import api
        return getattr(api, name)
    raise AttributeError(f"module 'facemark' has no attribute {name!r}")
