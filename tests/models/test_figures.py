"""The stored parameter and MAC figures that `resnets models` prints equal a fresh count."""

import pytest

from resnets.models import list_models
from resnets.models.inspect import _stored, compute_figures, figures_of


def test_every_registered_model_has_stored_figures():
    assert sorted(_stored()) == sorted(list_models()), "run `python -m resnets.models.inspect` to refresh figures.json"


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_stored_figures_equal_a_fresh_count(name):
    assert _stored()[name] == compute_figures(name)


def test_a_model_missing_from_the_table_is_counted_on_the_spot(monkeypatch):
    monkeypatch.setattr("resnets.models.inspect._stored", lambda: {})
    fig = figures_of("resnet20")
    assert fig.params == 269_722 and fig.input_size == (3, 32, 32) and fig.macs > 0
