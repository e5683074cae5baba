from __future__ import annotations

import pytest
from train_helpers import REPO

from resnets.train import RunResult, config_from_mapping, run


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """ResNet-20 trained briefly on the digits (the demo recipe, 4 epochs): shared by several tests."""
    out = tmp_path_factory.mktemp("digits-runs")
    cfg = config_from_mapping(
        __import__("yaml").safe_load((REPO / "configs" / "demo.yaml").read_text()),
        ["train.epochs=4", f"train.out_dir={out}", "train.tensorboard=false", "train.threads=1"],
    )
    return run(cfg, device="cpu", quiet=True)
