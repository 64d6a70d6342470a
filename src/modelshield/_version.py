"""The package version, in a leaf module every layer may import (``modelshield.__version__`` re-exports it)."""

__version__ = "0.1.0"
