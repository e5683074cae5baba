import pytest

from resnets.bench import BenchConfig, run_bench

TINY = dict(model="resnet20", device="cpu", batch=4, warmup=1, reps=2, steps=1, threads=1)


@pytest.fixture(scope="session")
def result() -> dict:
    """One tiny CPU benchmark (resnet20, batch 4, 1 warm-up step, 2 repetitions of 1 step)."""
    return run_bench(BenchConfig(**TINY))


@pytest.fixture()
def tiny() -> dict:
    """The options of that tiny benchmark, to vary one at a time."""
    return dict(TINY)
