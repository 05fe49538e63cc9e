"""Data on disk: readers for local files and Hub data sets, layout adapters into Records, resumable output."""

from prmkit.data.layouts import LAYOUTS, detect_layout, layout_names, load_records
from prmkit.data.readers import read_rows

__all__ = ["LAYOUTS", "detect_layout", "layout_names", "load_records", "read_rows"]
