"""facemark: facial landmarks (88-point face88 layout by default) you can train, clean, evaluate and ship."""

from facemark.scheme import FACE88, IBUG68, Scheme, get_scheme

__version__ = "0.1.0"
__all__ = ["FACE88", "IBUG68", "Scheme", "get_scheme", "__version__"]
