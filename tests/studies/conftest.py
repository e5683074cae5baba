import pytest

from resnets.studies.recipe import Recipe


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Decoded-image caches go to the test's directory, not the user's."""
    monkeypatch.setenv("RESNETS_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_recipe() -> Recipe:
    """Two depths of each kind on digits, a handful of iterations."""
    return Recipe(data="digits", batch_size=32, iterations=4, eval_every=2, milestones=(3,),
                  train_eval_samples=100, final_train_eval_samples=200, depths=(8, 14), seeds=(0,))
