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


_OS_HINTS = {
    "ENOSPC": "the disk is full: free space, then run the same command again to resume (records already "
    "written are kept)",
    "EDQUOT": "the disk quota is used up: free space, then run the same command again to resume",
    "EACCES": "no permission to write there: choose another output_dir or fix the folder's permissions",
    "EPERM": "the system does not allow writing there: choose another output_dir",
    "EROFS": "that file system is read-only: choose another output_dir",
}


def describe_os_error(exc: OSError, path: object = None) -> str:
    """An OSError as one line that names the file (the error's own, else `path`), the cause and what to do."""
    import errno

    name = errno.errorcode.get(exc.errno or -1, "")
    where = exc.filename if exc.filename is not None else path
    head = f"{where}: " if where is not None else ""
    cause = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(name)
    return f"{head}{cause}" + (f" ({name})" if name else "") + (f"; {hint}" if hint else "")


class StorageError(DataError):
    """An output file or folder cannot be written (full disk, read-only folder): names the file."""

    @classmethod
    def from_os(cls, exc: OSError, path: object = None) -> StorageError:
        return cls(describe_os_error(exc, path))
