"""Layout adapters; importing this package registers every one of them in LAYOUTS."""

from prmkit.data.adapters import first_error, math_shepherd, native, prm800k, prmbench, problems  # noqa: F401
from prmkit.data.adapters.base import LAYOUTS, Adapter, Place, RowError

__all__ = ["LAYOUTS", "Adapter", "Place", "RowError"]
