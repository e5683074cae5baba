"""Fetching published weights files: cached, verified, never half-written.

Where a file is looked for, in order:

1. our cache, ``$RESNETS_HOME/weights`` (default ``~/.cache/resnets/weights``);
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``),
   where torchvision puts the files it downloads: reused (its hash checked), never fetched twice;
3. otherwise it is downloaded into our cache.

The download itself is the package's one download (:func:`resnets.io.download.download`): it
streams into a temporary file, checks the SHA-256 against the hash prefix in the file name (as
torch.hub does), renames only a whole, verified file into place, and raises
:class:`~resnets.io.download.DownloadError` in one line naming the URL and where to put the file
by hand; a lock on the cache folder makes a second process wait for the first one's download.
``$RESNETS_WEIGHTS_MIRROR`` (a base URL) replaces the host and folder of every URL, for mirrors
inside closed networks.
"""

from __future__ import annotations

import os
from pathlib import Path

from resnets.models.pretrained import hash_prefix_of

DEFAULT_TIMEOUT = 30.0  # seconds without a byte before a download is given up


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


def cached_file(filename: str) -> Path | None:
    """The verified file from our cache or torch's, or None when neither holds it."""
    ours = weights_dir() / filename
    if ours.is_file():  # only ever renamed into place after its hash was checked
        return ours
    from resnets.io.download import file_checksum

    theirs = torch_hub_dir() / filename
    if theirs.is_file() and file_checksum(theirs, algorithm="sha256").startswith(hash_prefix_of(filename)):
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


def download(url: str, dest_dir: Path, *, timeout: float = DEFAULT_TIMEOUT, progress: bool = False) -> Path:
    """Download ``url`` into ``dest_dir`` (file name from the URL, hash prefix verified), through
    the package's one download (:func:`resnets.io.download.download`)."""
    from resnets.io.download import Checksum, DownloadError
    from resnets.io.download import download as transfer

    filename = url.rsplit("/", 1)[-1]
    prefix = hash_prefix_of(filename)
    dest = Path(dest_dir) / filename
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the weights cache {dest.parent} ({exc.strerror}); set RESNETS_HOME "
                            "to a writable folder") from None
    return transfer(url, dest, checksum=Checksum("sha256", prefix, prefix=True), timeout=timeout, progress=progress,
                    manual=f"download {url} by hand into {dest.parent}/ (keep the name {filename})")
