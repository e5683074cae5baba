"""Downloading weights against a loopback server: verified, cached, never half-written."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from loopback import hashed_name, serving

from resnets.io.download import DownloadError
from resnets.models.hub import download, fetch, weights_dir


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """Our cache and torch's, both empty, under tmp_path."""
    monkeypatch.setenv("RESNETS_HOME", str(tmp_path / "resnets"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("RESNETS_WEIGHTS_MIRROR", raising=False)
    return tmp_path


def _leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` other than lock files (a partial download would show here)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


PAYLOAD = os.urandom(300_000)
NAME = hashed_name("tiny", PAYLOAD)


def test_good_download_is_verified_and_cached_once(homes) -> None:
    weights_dir().mkdir(parents=True)
    (weights_dir() / f".{NAME}.killed.part").write_bytes(PAYLOAD[:10])  # left by a killed download
    with serving() as server:
        server.files[NAME] = PAYLOAD
        path = fetch(server.url("ok", NAME))
        assert path == weights_dir() / NAME and path.read_bytes() == PAYLOAD
        assert fetch(server.url("ok", NAME)) == path
        assert server.requests[NAME] == 1  # the second call was served by the cache
    assert _leftovers(weights_dir()) == [NAME]


def test_torch_hub_cache_is_reused(homes) -> None:
    hub = homes / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / NAME).write_bytes(PAYLOAD)
    with serving() as server:
        assert fetch(server.url("ok", NAME)) == hub / NAME
        assert server.requests[NAME] == 0
    assert _leftovers(weights_dir()) == []


def test_a_damaged_file_in_torch_s_cache_is_not_trusted(homes) -> None:
    hub = homes / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / NAME).write_bytes(PAYLOAD[:1000])
    with serving() as server:
        server.files[NAME] = PAYLOAD
        assert fetch(server.url("ok", NAME)) == weights_dir() / NAME
        assert server.requests[NAME] == 1


@pytest.mark.parametrize("mode, words", [("ok", "does not start with"), ("cut", "cut after"), ("500", "HTTP 500"),
                                         ("missing", "HTTP 404")])
def test_failures_are_one_line_and_leave_nothing(homes, mode, words) -> None:
    with serving() as server:
        if mode == "ok":  # served content does not match the hash in its name
            server.files[NAME] = PAYLOAD[::-1]
        elif mode != "missing":
            server.files[NAME] = PAYLOAD
        url = server.url("ok" if mode == "missing" else mode, NAME)
        with pytest.raises(DownloadError) as err:
            download(url, weights_dir(), timeout=5)
    message = str(err.value)
    assert words in message and "\n" not in message
    assert url in message and str(weights_dir()) in message and NAME in message
    assert _leftovers(weights_dir()) == []


def test_a_stalled_server_times_out(homes) -> None:
    with serving() as server:
        server.files[NAME] = PAYLOAD
        with pytest.raises(DownloadError, match="no data for 0.5 s"):
            download(server.url("stall", NAME), weights_dir(), timeout=0.5)
    assert _leftovers(weights_dir()) == []


def test_no_network_names_the_url_the_file_and_the_folder(homes) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{NAME}"
    with pytest.raises(DownloadError) as err:
        fetch(url, timeout=2)
    message = str(err.value)
    assert "\n" not in message and url in message and NAME in message and str(weights_dir()) in message


def test_a_name_without_a_hash_is_refused_before_any_transfer(homes) -> None:
    with serving() as server:
        server.files["plain.pth"] = PAYLOAD
        with pytest.raises(ValueError, match="SHA-256 prefix"):
            fetch(server.url("ok", "plain.pth"))
        assert server.requests["plain.pth"] == 0


def test_two_processes_downloading_at_once_end_with_one_good_file(homes) -> None:
    code = ("import sys; from pathlib import Path; from resnets.models.hub import download; "
            "print('start', flush=True); print(download(sys.argv[1], Path(sys.argv[2])))")
    with serving() as server:
        server.files[NAME] = PAYLOAD
        url = server.url("hold", NAME)  # half the file, the rest only once released

        def start() -> subprocess.Popen:
            proc = subprocess.Popen([sys.executable, "-c", code, url, str(weights_dir())], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "start"
            return proc

        first = start()
        while server.requests[NAME] == 0 and first.poll() is None:  # until the first is mid-transfer
            server.release.wait(0.01)
        second = start()  # starts while the first one's file is half-written
        server.release.set()
        results = [p.communicate(timeout=120) for p in (first, second)]
        assert [first.returncode, second.returncode] == [0, 0], results
        assert server.requests[NAME] == 1  # the second process waited for the first one's file
    assert _leftovers(weights_dir()) == [NAME]
    assert hashlib.sha256((weights_dir() / NAME).read_bytes()).digest() == hashlib.sha256(PAYLOAD).digest()


def test_a_mirror_replaces_host_and_folder(homes, monkeypatch) -> None:
    with serving() as server:
        server.files[NAME] = PAYLOAD
        monkeypatch.setenv("RESNETS_WEIGHTS_MIRROR", server.base + "/ok/")
        assert fetch(f"https://example.invalid/models/{NAME}").read_bytes() == PAYLOAD
