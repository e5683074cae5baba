"""Throughput and memory of our models against torchvision's (or a plain CIFAR ResNet).

>>> from resnets.bench import BenchConfig, run_bench, format_text
>>> result = run_bench(BenchConfig(model="resnet20", device="cpu", batch=8, reps=2, steps=2))
>>> print(format_text(result))            # img/s of ours and theirs, ratio, device, versions
"""

from resnets.bench.config import BenchConfig
from resnets.bench.measure import run_bench
from resnets.bench.reference_cifar import ReferenceCifarResNet
from resnets.bench.results import format_text, load_json, save_json
from resnets.bench.twins import TWINS, get_twin
from resnets.train.cuda_graphs import GraphedForward

__all__ = [
    "BenchConfig",
    "GraphedForward",
    "ReferenceCifarResNet",
    "TWINS",
    "format_text",
    "get_twin",
    "load_json",
    "run_bench",
    "save_json",
]
