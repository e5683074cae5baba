"""Errors with messages that name the problem and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files were not found in any of the searched places."""

    def __init__(self, name: str, searched: Sequence[Path | str], how_to_get: str) -> None:
        places = "\n".join(f"  - {p}" for p in searched)
        message = (
            f"dataset {name!r} not found. Searched:\n{places}\n"
            f"To get it: {how_to_get}"
        )
        super().__init__(message)
        self.name = name
        self.searched = [str(p) for p in searched]
        self.how_to_get = how_to_get

    def __reduce__(self) -> tuple[type, tuple[str, list[str], str]]:
        # pickled with its own arguments (the default passes the message alone), so it can come
        # back from a worker process whole
        return (type(self), (self.name, self.searched, self.how_to_get))
