"""Seed bands and their verdicts on constructed inputs."""

import math

import pytest
from matplotlib.figure import Figure

from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN, band, compare, depth_colour, no_worse, plot_band


def test_band_statistics():
    b = band([0.1, 0.2, 0.3])
    assert b.n == 3
    assert b.mean == pytest.approx(0.2)
    assert b.std == pytest.approx(0.1)
    assert (b.lo, b.hi) == (0.1, 0.3)
    assert band([0.5]).std == 0.0
    with pytest.raises(ValueError):
        band([])


def test_separated_bands_in_the_claimed_direction_are_shown():
    c = compare(higher=band([0.30, 0.32, 0.35]), lower=band([0.10, 0.12, 0.14]), factor=2.0)
    assert c.verdict == SHOWN and c.separated
    assert c.ratio == pytest.approx(0.3233333 / 0.12, rel=1e-4)


def test_overlapping_bands_are_not_shown():
    c = compare(higher=band([0.30, 0.11, 0.35]), lower=band([0.10, 0.12, 0.14]))
    assert c.verdict == NOT_SHOWN and not c.separated


def test_separated_but_short_of_the_factor_is_not_shown():
    assert compare(higher=band([0.20, 0.21]), lower=band([0.15, 0.16]), factor=2.0).verdict == NOT_SHOWN
    assert compare(higher=band([0.20, 0.21]), lower=band([0.15, 0.16]), factor=1.0).verdict == SHOWN


def test_separated_the_other_way_is_opposite():
    c = compare(higher=band([0.01, 0.02, 0.015]), lower=band([0.10, 0.12, 0.14]), factor=2.0)
    assert c.verdict == OPPOSITE and c.separated


def test_one_seed_or_nan_cannot_show_an_effect():
    assert compare(higher=band([0.9]), lower=band([0.1])).verdict == NOT_SHOWN
    assert compare(higher=band([0.9, math.nan]), lower=band([0.1, 0.1])).verdict == NOT_SHOWN


def test_no_worse():
    assert no_worse(deep=band([0.01, 0.02]), shallow=band([0.015, 0.03])) == SHOWN
    assert no_worse(deep=band([0.001, 0.002]), shallow=band([0.05, 0.06])) == SHOWN
    assert no_worse(deep=band([0.05, 0.06]), shallow=band([0.001, 0.002])) == OPPOSITE
    assert no_worse(deep=band([0.05]), shallow=band([0.001])) == NOT_SHOWN
    # one image of 1,438 worse on every seed: no effect at a tolerance of half a point, worse without one
    assert no_worse(deep=band([0.0007, 0.0007, 0.0007]), shallow=band([0.0, 0.0, 0.0])) == OPPOSITE
    assert no_worse(deep=band([0.0007, 0.0007, 0.0007]), shallow=band([0.0, 0.0, 0.0]), tolerance=0.005) == SHOWN
    assert no_worse(deep=band([0.02, 0.03]), shallow=band([0.0, 0.001]), tolerance=0.005) == OPPOSITE


def test_depth_colours_do_not_depend_on_the_other_depths():
    assert depth_colour(56) == depth_colour(56)
    assert len({depth_colour(d) for d in (8, 14, 20, 26, 32, 44, 56, 110)}) == 8


def test_plot_band_draws_mean_and_min_max():
    fig = Figure()
    ax = fig.subplots()
    plot_band(ax, [1, 2], [[1.0, 2.0], [3.0, 4.0]], colour=depth_colour(20), label="x")
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == [2.0, 3.0]
    (poly,) = ax.collections
    ys = poly.get_paths()[0].vertices[:, 1]
    assert ys.min() == 1.0 and ys.max() == 4.0


def test_report_carries_claims_and_what_to_look_at(tmp_path):
    import json

    from resnets.studies.report import Claim, Plot, Section, write_report

    claim = Claim(claim="deep plain trains worse", paper="Fig. 6", measured="12% vs 3%", verdict=SHOWN)
    html_path, md_path = write_report(
        tmp_path, title="T", meta={"command": "x"}, claims=[claim],
        sections=[Section("S", images=[Plot("cap", "AAAA", look_at="the dashed lines")])])
    html = html_path.read_text()
    assert "The paper's claims, checked" in html and "12% vs 3%" in html and "the dashed lines" in html
    assert "What to look at: the dashed lines" in md_path.read_text()
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert saved["title"] == "T" and saved["claims"][0]["verdict"] == SHOWN
