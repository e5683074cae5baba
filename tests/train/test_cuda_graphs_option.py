import pytest

from resnets.train import config_from_mapping, run


def test_cuda_graphs_on_the_cpu_is_a_clear_error(tmp_path):
    cfg = config_from_mapping({
        "model": {"name": "resnet20"},
        "data": {"name": "synthetic", "synthetic_shape": [1, 8, 8], "synthetic_size": 32, "batch_size": 8,
                 "val_fraction": 0.0},
        "train": {"iterations": 2, "cuda_graphs": True, "out_dir": str(tmp_path), "tensorboard": False},
    })
    with pytest.raises(ValueError, match=r"cuda_graphs=true needs a CUDA device.*cuda_graphs=false"):
        run(cfg, device="cpu", quiet=True)
    assert not any(tmp_path.iterdir())  # refused before anything was written
