from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from resnets.data import ChecksumError
from resnets.io.download import download_file, verify_file


def _mirror(tmp_path: Path) -> tuple[Path, bytes]:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    payload = b"resnets test payload" * 100
    (mirror / "blob.bin").write_bytes(payload)
    return mirror, payload


def test_good_file_accepted_from_file_url(tmp_path: Path) -> None:
    mirror, payload = _mirror(tmp_path)
    sha = hashlib.sha256(payload).hexdigest()
    path = download_file(mirror.as_uri(), "blob.bin", tmp_path / "dest", checksum=f"sha256:{sha}")
    assert path.read_bytes() == payload
    assert verify_file(path, checksum=f"md5:{hashlib.md5(payload).hexdigest()}")


def test_tampered_file_rejected_and_removed(tmp_path: Path) -> None:
    mirror, payload = _mirror(tmp_path)
    good = hashlib.md5(payload).hexdigest()
    (mirror / "blob.bin").write_bytes(payload + b"tampered")
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError, match="does not match"):
        download_file(mirror.as_uri(), "blob.bin", dest, checksum=f"md5:{good}")
    assert list(dest.iterdir()) == []


def test_missing_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="could not download.*by hand"):
        download_file((tmp_path / "nowhere").as_uri(), "x.gz", tmp_path / "dest", checksum="md5:00")


def test_bad_checksum_spec_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5:<hex>"):
        download_file("file:///", "x", tmp_path, checksum="crc32:1234")
