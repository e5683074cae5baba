"""Seed bands and the verdicts computed from them, shared by every study.

A study trains each network under several seeds; a figure of the study is then a *band*: the
mean over seeds with its spread (standard deviation, and the min-max range). A claim such as
"plain-56 trains to a higher error than plain-8" is decided from two bands:

- ``shown``: the bands are apart in the claimed direction (the lowest value of the side claimed
  higher is above the highest value of the other side) and the means differ by the claimed factor;
- ``opposite``: the bands are apart in the other direction (what was measured contradicts the claim);
- ``not shown``: the bands overlap, or the factor is not reached, or there is a single seed
  (one run cannot tell an effect from noise).

Colours: one fixed colour per depth across every plot of every study, so that a depth reads the
same everywhere.

>>> b = band([0.10, 0.12, 0.11]); round(b.mean, 3), b.lo, b.hi
(0.11, 0.1, 0.12)
>>> compare(higher=band([0.3, 0.32, 0.35]), lower=band([0.1, 0.11, 0.12]), factor=2.0).verdict
'shown'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SHOWN, NOT_SHOWN, OPPOSITE = "shown", "not shown", "opposite"
VERDICTS = (SHOWN, NOT_SHOWN, OPPOSITE)


@dataclass(frozen=True)
class Band:
    """Values of one measurement over seeds: mean, standard deviation (0 for one seed), min, max."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a band needs at least one value")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "min": self.lo, "max": self.hi, "n": self.n,
                "values": list(self.values)}

    def text(self, *, scale: float = 100.0, digits: int = 2, unit: str = "%") -> str:
        """``mean ± std (min-max)`` in the given unit, e.g. ``12.30 ± 0.40 % (11.90-12.80)``."""
        f = f"{{:.{digits}f}}"
        if self.n == 1:
            return f"{f.format(scale * self.mean)}{unit} (one seed)"
        return (f"{f.format(scale * self.mean)} ± {f.format(scale * self.std)}{unit} "
                f"({f.format(scale * self.lo)}-{f.format(scale * self.hi)}, {self.n} seeds)")


def band(values: Sequence[float]) -> Band:
    """The band of ``values`` (NaNs, e.g. a network that diverged, are kept: they poison the mean)."""
    return Band(tuple(float(v) for v in values))


@dataclass(frozen=True)
class Comparison:
    """The verdict on "``higher`` is above ``lower``" (by ``factor`` on the means, when given)."""

    higher: Band
    lower: Band
    factor: float
    verdict: str

    @property
    def separated(self) -> bool:
        """The bands do not overlap (in either direction)."""
        return self.higher.lo > self.lower.hi or self.lower.lo > self.higher.hi

    @property
    def ratio(self) -> float:
        return self.higher.mean / self.lower.mean if self.lower.mean > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "separated": self.separated, "factor": self.factor,
                "ratio": self.ratio, "higher": self.higher.to_dict(), "lower": self.lower.to_dict()}


def compare(*, higher: Band, lower: Band, factor: float = 1.0) -> Comparison:
    """Decide the claim "``higher`` is above ``lower``" (and, with ``factor`` > 1, by at least that
    factor on the means) from the two seed bands; see the module's docstring for the three verdicts."""
    if factor < 1.0:
        raise ValueError(f"factor must be >= 1, got {factor}")
    values = higher.values + lower.values
    if any(v != v for v in values) or higher.n < 2 or lower.n < 2:
        verdict = NOT_SHOWN
    elif higher.lo > lower.hi and higher.mean >= factor * lower.mean:
        verdict = SHOWN
    elif lower.lo > higher.hi:
        verdict = OPPOSITE
    else:
        verdict = NOT_SHOWN
    return Comparison(higher=higher, lower=lower, factor=factor, verdict=verdict)


def no_worse(*, deep: Band, shallow: Band, tolerance: float = 0.0) -> str:
    """The claim "``deep`` is no worse than ``shallow``" (lower is better): ``shown`` unless ``deep``
    is worse with the bands apart by more than ``tolerance`` (``opposite``): the resolution below which
    a difference means nothing (e.g. one training image of a small set); ``not shown`` for a single
    seed or NaNs."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if any(v != v for v in deep.values + shallow.values) or deep.n < 2 or shallow.n < 2:
        return NOT_SHOWN
    return OPPOSITE if deep.lo > shallow.hi + tolerance else SHOWN


# one colour per depth, the same in every plot of every study (matplotlib's tab10 order)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")
_DEPTHS = (8, 14, 20, 26, 32, 44, 56, 110, 164, 1202)


def depth_colour(depth: int) -> str:
    """The colour of ``depth`` in every study's plots (fixed, whatever the other depths drawn)."""
    if depth in _DEPTHS:
        return _PALETTE[_DEPTHS.index(depth)]
    return _PALETTE[hash(depth) % len(_PALETTE)]


def plot_band(ax: Axes, x: Sequence[float], runs: Sequence[Sequence[float]], *, colour: str, label: str | None,
              style: str = "-", lw: float = 2.0, scale: float = 1.0) -> None:
    """The mean over ``runs`` (one sequence per seed, aligned with ``x``) as a line, and the min-max
    range over seeds as a shaded band of the same colour."""
    if not runs:
        return
    cols = list(zip(*runs))
    mean = [scale * statistics.fmean(c) for c in cols]
    ax.plot(list(x)[:len(mean)], mean, style, lw=lw, color=colour, label=label)
    if len(runs) > 1:
        ax.fill_between(list(x)[:len(mean)], [scale * min(c) for c in cols], [scale * max(c) for c in cols],
                        color=colour, alpha=0.18, lw=0)


__all__ = ["Band", "Comparison", "NOT_SHOWN", "OPPOSITE", "SHOWN", "VERDICTS", "band", "compare", "depth_colour",
           "no_worse", "plot_band"]
