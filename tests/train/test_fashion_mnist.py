from pathlib import Path

import pytest
from train_helpers import REPO

from resnets.train import config_from_mapping, run

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_short_fashion_mnist_run_reaches_80_percent_on_the_real_test_set(tmp_path):
    """ResNet-20 on 14x14 Fashion-MNIST, 200 steps of 64 (a fifth of an epoch), CPU."""
    import yaml

    cfg = config_from_mapping(yaml.safe_load((REPO / "configs" / "demo.yaml").read_text()), [
        "data.name=fashion-mnist", f"data.root={FASHION}", "data.image_size=14", "data.augment=none",
        "data.val_fraction=0.02", "data.batch_size=64", "data.eval_batch_size=1000",
        "train.epochs=null", "train.iterations=200", "schedule.unit=iter", "schedule.warmup=10",
        f"train.out_dir={tmp_path}", "train.tensorboard=false", "train.threads=1",
    ])
    result = run(cfg, device="cpu", quiet=True)
    assert result.test is not None and result.test["samples"] == 10000
    assert result.test["acc"] >= 0.80
