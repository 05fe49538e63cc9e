"""Error types the CLI turns into one clear message and an exit code (no traceback)."""

from __future__ import annotations


class PrmkitError(Exception):
    """A failure a user can act on. `exit_code` follows the CLI convention: 2 usage/recipe, 1 run time."""

    exit_code = 1


class RecipeError(PrmkitError):
    """A recipe or override is invalid: names the file, the key path and what is allowed."""

    exit_code = 2


class DataError(PrmkitError):
    """A data file or line cannot be read: names the file and, where known, the line number."""

    exit_code = 1


class ModelError(PrmkitError):
    """A model cannot be loaded or does not fit its declared format."""

    exit_code = 1
