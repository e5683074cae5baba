"""Download a dataset file from a base URL (https://, http:// or file://), checksum verified."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from resnets.data.errors import ChecksumError

_ALGORITHMS = ("md5", "sha256")


def file_checksum(path: Path, *, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"checksum algorithm {algorithm!r} is not one of {_ALGORITHMS}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse(checksum: str) -> tuple[str, str]:
    algorithm, sep, value = checksum.partition(":")
    if not sep or algorithm not in _ALGORITHMS or not value:
        raise ValueError(f"checksum {checksum!r} must look like 'md5:<hex>' or 'sha256:<hex>'")
    return algorithm, value.lower()


def verify_file(path: Path, *, checksum: str) -> bool:
    """Whether ``path`` exists and matches ``checksum`` ('md5:<hex>' or 'sha256:<hex>')."""
    algorithm, expected = _parse(checksum)
    return path.is_file() and file_checksum(path, algorithm=algorithm) == expected


def download_file(base_url: str, filename: str, dest_dir: Path, *, checksum: str, timeout: float = 60.0) -> Path:
    """Fetch ``base_url/filename`` into ``dest_dir/filename`` and verify its checksum.

    A file already there with the right checksum is kept. The download goes to a ``.part``
    file first; on a checksum mismatch that file is deleted and :class:`ChecksumError` raised,
    so a bad download never looks like a good dataset.
    """
    algorithm, expected = _parse(checksum)
    dest_dir = Path(dest_dir)
    dest = dest_dir / filename
    if verify_file(dest, checksum=checksum):
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    url = base_url.rstrip("/") + "/" + filename
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise OSError(
            f"could not download {url}: {exc}. Check the network, or download the file by hand "
            f"into {dest_dir} (expected {algorithm} {expected})"
        ) from exc
    actual = file_checksum(part, algorithm=algorithm)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{url}: {algorithm} checksum {actual} does not match the published {expected}; "
            f"the partial file was deleted. Retry, or use another mirror (the download may be "
            f"corrupt or the mirror may serve a different file)"
        )
    part.replace(dest)
    return dest
