"""The one download: a URL into a file, checksum verified, never half-written.

Every download of the package (dataset files, published weights) goes through :func:`download`:
the bytes stream into a temporary file next to the destination while their digest is computed,
and only a transfer that is complete (as long as the server's Content-Length) and matches its
:class:`Checksum` is renamed into place. Any failure (no network, an HTTP error, a server that
stalls for ``timeout`` seconds, a cut transfer, a wrong checksum) removes the temporary file and
raises :class:`DownloadError` (:class:`ChecksumError` for a wrong checksum), one line naming the
URL, what happened and the caller's manual fix. A lock on the destination's folder makes a
second process wait for the first one's download rather than start its own. ``file://`` URLs
work too (mirrors on disk).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
ALGORITHMS = ("md5", "sha256")


class DownloadError(OSError):
    """A file could not be fetched; the message is one line with the manual fix, and nothing
    partial is left behind."""


class ChecksumError(DownloadError, ValueError):
    """A downloaded file does not match its published checksum (the file was removed)."""


@dataclass(frozen=True)
class Checksum:
    """What a file's digest must be: ``value`` in full, or (``prefix``) its first hex digits, as
    torch.hub's file names carry them."""

    algorithm: str
    value: str
    prefix: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"checksum algorithm {self.algorithm!r} is not one of {ALGORITHMS}")

    @classmethod
    def parse(cls, spec: str) -> Checksum:
        """``'md5:<hex>'`` or ``'sha256:<hex>'``."""
        algorithm, sep, value = spec.partition(":")
        if not sep or algorithm not in ALGORITHMS or not value:
            raise ValueError(f"checksum {spec!r} must look like 'md5:<hex>' or 'sha256:<hex>'")
        return cls(algorithm, value.lower())

    def matches(self, digest: str) -> bool:
        return digest.startswith(self.value) if self.prefix else digest == self.value

    def mismatch(self, digest: str) -> str:
        """What is wrong with a file of ``digest``, in words."""
        if self.prefix:
            return f"{self.algorithm.upper().replace('SHA', 'SHA-')} {digest[:12]}… does not start with {self.value} " \
                   "as its name says"
        return f"{self.algorithm} checksum {digest} does not match the published {self.value}"


def file_checksum(path: Path, *, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"checksum algorithm {algorithm!r} is not one of {ALGORITHMS}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, *, checksum: str | Checksum) -> bool:
    """Whether ``path`` exists and matches ``checksum`` (a :class:`Checksum` or 'md5:<hex>' / 'sha256:<hex>')."""
    check = Checksum.parse(checksum) if isinstance(checksum, str) else checksum
    return Path(path).is_file() and check.matches(file_checksum(Path(path), algorithm=check.algorithm))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder ``folder`` (waits for another process holding it; leaves no
    file behind); a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename still leaves one whole file
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def download(url: str, dest: str | Path, *, checksum: Checksum, manual: str, timeout: float = 30.0,
             progress: bool = False) -> Path:
    """Fetch ``url`` into the file ``dest`` and verify it against ``checksum``; returns ``dest``.

    A file already at ``dest`` that matches is kept (another process may have fetched it while
    this one waited for the lock). ``manual`` ends every error message: how to get the file by
    hand (e.g. "download URL by hand into FOLDER"). ``timeout``: seconds without a byte before the
    transfer is given up. ``progress``: received megabytes on one line of stdout.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest.parent):
        if verify_file(dest, checksum=checksum):
            return dest
        for stale in dest.parent.glob(f".{dest.name}.*.part"):  # left by a killed download (the lock is ours)
            stale.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _stream(url, out, algorithm=checksum.algorithm, timeout=timeout, progress=progress,
                                 manual=manual)
                out.flush()
                os.fsync(out.fileno())
            if not checksum.matches(digest):
                raise ChecksumError(f"{url}: {checksum.mismatch(digest)}; the file was removed. Retry later (the "
                                    f"transfer may be corrupt, or the server may serve another file), or {manual}")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return dest


def download_file(base_url: str, filename: str, dest_dir: str | Path, *, checksum: str, timeout: float = 60.0) -> Path:
    """Fetch ``base_url/filename`` into ``dest_dir/filename``, verified against ``checksum``
    ('md5:<hex>' or 'sha256:<hex>'): :func:`download` for files published beside their checksums."""
    check = Checksum.parse(checksum)
    url = base_url.rstrip("/") + "/" + filename
    manual = f"download the file by hand into {dest_dir} (expected {check.algorithm} {check.value})"
    return download(url, Path(dest_dir) / filename, checksum=check, manual=manual, timeout=timeout)


def _failed(url: str, what: str, manual: str) -> DownloadError:
    return DownloadError(f"could not download {url}: {what}. {manual}")


def _stream(url: str, out: BinaryIO, *, algorithm: str, timeout: float, progress: bool, manual: str) -> str:
    """Copy ``url`` into ``out``; returns the digest of what was received."""
    digest = hashlib.new(algorithm)
    received, expected = 0, None
    removed = "the partial file was removed"
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "resnets"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            for block in iter(lambda: response.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
                received += len(block)
                if progress:
                    total = f" of {expected / 1e6:.1f}" if expected else ""
                    print(f"\r{url.rsplit('/', 1)[-1]}: {received / 1e6:.1f}{total} MB", end="", flush=True)
    except urllib.error.HTTPError as exc:
        raise _failed(url, f"HTTP {exc.code} {exc.reason}; nothing was written", manual) from None
    except TimeoutError:
        raise _failed(url, f"no data for {timeout:g} s; {removed}", manual) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            raise _failed(url, f"no data for {timeout:g} s; {removed}", manual) from None
        raise DownloadError(f"could not download {url}: cannot connect ({exc.reason}); without a network, "
                            f"{manual}") from None
    except http.client.HTTPException as exc:
        raise _failed(url, f"the transfer failed ({type(exc).__name__}); {removed}", manual) from None
    except OSError as exc:
        raise _failed(url, f"the download failed ({exc.strerror or exc}); {removed}", manual) from None
    finally:
        if progress and received:
            print()
    if expected is not None and received != expected:
        raise _failed(url, f"the transfer was cut after {received} of {expected} bytes; {removed}", manual)
    return digest.hexdigest()


__all__ = ["ALGORITHMS", "Checksum", "ChecksumError", "DownloadError", "download", "download_file", "file_checksum",
           "verify_file"]
