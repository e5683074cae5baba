"""The import path the studies still use for the atomic write, which lives in
:mod:`resnets.io.atomic` (nothing is defined here)."""

from resnets.io.atomic import StorageError, storage_error, write_atomically, write_files_atomically

__all__ = ["StorageError", "storage_error", "write_atomically", "write_files_atomically"]
