"""Fetching published weights files: cached, verified, never half-written.

Where a file is looked for, in order:

1. our cache, ``$RESNETS_HOME/weights`` (default ``~/.cache/resnets/weights``);
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``),
   where torchvision puts the files it downloads: reused (its hash checked), never fetched twice;
3. otherwise it is downloaded into our cache.

A download streams into a temporary file next to its destination while its SHA-256 is
computed, is compared with the hash prefix in the file name (as torch.hub does), and only then
renamed into place. Any failure (no network, HTTP error, a stalled server, a cut transfer, a
wrong hash) removes the temporary file and raises :class:`DownloadError` with one line naming
the URL and where to put the file by hand. A lock file makes a second process wait for the
first one's download rather than start its own. ``$RESNETS_WEIGHTS_MIRROR`` (a base URL)
replaces the host and folder of every URL, for mirrors inside closed networks.
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
from pathlib import Path
from typing import BinaryIO, Iterator

from resnets.models.pretrained import hash_prefix_of

CHUNK = 1 << 20
DEFAULT_TIMEOUT = 30.0  # seconds without a byte before a download is given up


class DownloadError(RuntimeError):
    """A weights file could not be fetched; the message is one line with the manual fix."""


def resnets_home() -> Path:
    """``$RESNETS_HOME``, else ``$XDG_CACHE_HOME/resnets``, else ``~/.cache/resnets``."""
    home = os.environ.get("RESNETS_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "resnets"


def weights_dir() -> Path:
    """Our cache of downloaded weights files."""
    return resnets_home() / "weights"


def torch_hub_dir() -> Path:
    """torch's (and torchvision's) download folder: ``torch.hub.get_dir()/checkpoints``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_file(filename: str) -> Path | None:
    """The verified file from our cache or torch's, or None when neither holds it."""
    ours = weights_dir() / filename
    if ours.is_file():  # only ever renamed into place after its hash was checked
        return ours
    theirs = torch_hub_dir() / filename
    if theirs.is_file() and sha256_of(theirs).startswith(hash_prefix_of(filename)):
        return theirs
    return None


def mirrored(url: str) -> str:
    mirror = os.environ.get("RESNETS_WEIGHTS_MIRROR")
    return mirror.rstrip("/") + "/" + url.rsplit("/", 1)[-1] if mirror else url


def fetch(url: str, *, timeout: float = DEFAULT_TIMEOUT, progress: bool = False) -> Path:
    """The local path of the weights file at ``url``: from a cache, else downloaded and verified."""
    filename = url.rsplit("/", 1)[-1]
    hash_prefix_of(filename)  # a name without a hash cannot be verified: refused before any transfer
    found = cached_file(filename)
    if found is not None:
        return found
    return download(mirrored(url), weights_dir(), timeout=timeout, progress=progress)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (waits for another process holding it); a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename still leaves one whole file
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def download(url: str, dest_dir: Path, *, timeout: float = DEFAULT_TIMEOUT, progress: bool = False) -> Path:
    """Download ``url`` into ``dest_dir`` (file name from the URL, hash prefix verified)."""
    filename = url.rsplit("/", 1)[-1]
    prefix = hash_prefix_of(filename)
    dest = Path(dest_dir) / filename
    manual = f"download {url} by hand into {dest.parent}/ (keep the name {filename})"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the weights cache {dest.parent} ({exc.strerror}); set RESNETS_HOME "
                            "to a writable folder") from None
    with _locked(dest.parent / f".{filename}.lock"):
        if dest.is_file():  # another process finished it while this one waited
            return dest
        for stale in dest.parent.glob(f".{filename}.*.part"):  # left by a killed download (the lock is ours)
            stale.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _stream(url, out, timeout=timeout, progress=progress, manual=manual)
                out.flush()
                os.fsync(out.fileno())
            if not digest.startswith(prefix):
                raise DownloadError(
                    f"{url}: SHA-256 {digest[:12]}… does not start with {prefix} as its name says; the file was "
                    f"removed. Retry later or {manual}"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return dest


def _stream(url: str, out: BinaryIO, *, timeout: float, progress: bool, manual: str) -> str:
    """Copy ``url`` into ``out``; returns the SHA-256 of what was received."""
    digest = hashlib.sha256()
    received, expected = 0, None
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
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; the file was not downloaded. {manual}") from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"{url}: no data for {timeout:g} s; the partial file was removed. {manual}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (socket.timeout, TimeoutError)):
            raise DownloadError(f"{url}: no data for {timeout:g} s; the partial file was removed. {manual}") from None
        raise DownloadError(f"{url}: cannot connect ({exc.reason}); without a network, {manual}") from None
    except http.client.HTTPException as exc:
        raise DownloadError(f"{url}: the transfer failed ({type(exc).__name__}); the partial file was removed. "
                            f"{manual}") from None
    except OSError as exc:
        raise DownloadError(f"{url}: the download failed ({exc.strerror or exc}); the partial file was removed. "
                            f"{manual}") from None
    finally:
        if progress and received:
            print()
    if expected is not None and received != expected:
        raise DownloadError(
            f"{url}: the transfer was cut after {received} of {expected} bytes; the partial file was removed. {manual}"
        )
    return digest.hexdigest()
