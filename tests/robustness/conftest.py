"""Keep the robustness tests away from the user's data and cache directories."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RESNETS_DATA", str(base / "data"))
    monkeypatch.setenv("RESNETS_CACHE", str(base / "cache"))
