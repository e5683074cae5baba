"""What the degradation study's report says and draws: the verdict sentences, the paper's claims
beside the measured bands, and the two figures (error against iterations, final error against depth).

Everything here reads the study's summary rows and its effect (:mod:`resnets.studies.degradation`):
one row per (kind, depth) with the per-seed final errors, and the verdicts decided from their bands.
"""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from resnets.studies.bands import OPPOSITE, SHOWN, band, depth_colour, plot_band
from resnets.studies.report import Claim

KIND_ORDER = ("plain", "residual")
LINEAR_BELOW = 1.0  # %: the error axes are linear below this and logarithmic above (0 % stays drawable)


def _rows_of(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["depth"])


def _text(row: dict[str, Any], key: str) -> str:
    return band(row[f"{key}s"]).text()


def _apart(separated: bool) -> str:
    return "the seed bands are apart" if separated else "the seed bands overlap"


def _band_text(entry: dict[str, Any], which: str, key: str) -> str:
    """``which`` ("shallow" / "deep") net's band of ``key`` in an effect entry, as text."""
    return band(entry[f"{which}_{key}_band"]["values"]).text()


def effect_text(e: dict[str, Any]) -> str:
    """The verdict in one paragraph: the means, the spreads, whether the bands separate."""
    if "plain" not in e or "residual" not in e:
        return "The ladder needs at least two depths of each kind to test the effect."
    p, r = e["plain"], e["residual"]
    head = {SHOWN: "Degradation shown", OPPOSITE: "Opposite of the paper"}.get(e["verdict"], "Degradation NOT shown")
    ratio = p["deep_train_error"] / p["shallow_train_error"] if p["shallow_train_error"] > 0 else float("inf")
    times = f"{ratio:.1f}x the error" if ratio < 100 else "over 100x the error"
    points = 100 * (p["deep_train_error"] - p["shallow_train_error"])
    residual_word = {SHOWN: "no worse", OPPOSITE: "worse, with the seed bands apart"}.get(
        r["train_verdict"], "not decided (a single seed or a failed run)")
    return (f"{head}: plain-{p['deep_depth']} trains to {_band_text(p, 'deep', 'train_error')} error against "
            f"{_band_text(p, 'shallow', 'train_error')} for plain-{p['shallow_depth']}, {times} ({points:+.2f} points; "
            f"{_apart(p['train_separated'])}; the claim asks for at least {e['factor']:g}x with the bands apart: "
            f"{p['train_verdict']}). Residual-{r['deep_depth']} trains to {_band_text(r, 'deep', 'train_error')} "
            f"against {_band_text(r, 'shallow', 'train_error')} for residual-{r['shallow_depth']}: deeper is "
            f"{residual_word} ({_apart(r['train_separated'])}; a difference within {100 * e.get('tolerance', 0.0):g} "
            f"points counts as none: {r['train_verdict']}).")


def ladder_text(rows: list[dict[str, Any]], *, key: str) -> list[str]:
    """One sentence per kind: its final error at every depth, in order (mean ± std, min-max)."""
    what = "training" if key == "train_error" else "test"
    out = []
    for kind in KIND_ORDER:
        mine = _rows_of(rows, kind)
        if not mine:
            continue
        first, last = mine[0], mine[-1]
        step = 100 * (last[key] - first[key])
        move = f"rises by {step:.2f} points" if step > 0 else f"falls by {-step:.2f} points" if step < 0 else "stays"
        parts = "; ".join(f"{kind}-{r['depth']} {_text(r, key)}" for r in mine)
        out.append(f"Final {what} error of the {kind} nets, by depth: {parts}. From {kind}-{first['depth']} to "
                   f"{kind}-{last['depth']} the mean {move}." if len(mine) > 1
                   else f"Final {what} error of {kind}-{first['depth']}: {_text(first, key)}.")
    return out


def held_out_text(e: dict[str, Any]) -> str:
    """What the test error shows (the paper's Table 6 claim), read from the verdicts."""
    if "plain" not in e or "residual" not in e:
        return ""
    p, r = e["plain"], e["residual"]
    plain = {SHOWN: "higher, with the seed bands apart, as in the paper's Figure 6 (left, bold)",
             OPPOSITE: "lower, with the seed bands apart: the opposite of the paper's Figure 6"}.get(
        p["test_verdict"], "not told apart from the shallow one's (the bands overlap)")
    if r["test_verdict"] == OPPOSITE and r["train_verdict"] == OPPOSITE:
        res = (f"higher than residual-{r['shallow_depth']}'s, with the seed bands apart, as its training error is: "
               "the opposite of the paper's Table 6; the deep residual net did not finish training under this recipe")
    elif r["test_verdict"] == OPPOSITE:
        res = (f"higher than residual-{r['shallow_depth']}'s, with the seed bands apart, although it trains as well: "
               "the opposite of the paper's Table 6, where deeper residual nets test better on CIFAR-10's 50,000 "
               "training images; on a small training set the deeper net's extra parameters fit the training images "
               "without generalising better")
    elif r["test_verdict"] == SHOWN:
        res = (f"no worse than residual-{r['shallow_depth']}'s within the seed bands, as in the paper's Table 6 "
               f"({'the bands are apart: it is better' if r['test_separated'] else 'the bands overlap'})")
    else:
        res = "not decided (a single seed or a failed run)"
    return (f"Test error (the test split, which chooses nothing): plain-{p['deep_depth']}'s is {plain}; "
            f"residual-{r['deep_depth']}'s is {res}.")


def claims(e: dict[str, Any]) -> list[Claim]:
    """The paper's claims (figure and table numbers) beside this run's bands and verdicts."""
    if "plain" not in e or "residual" not in e:
        return []
    p, r = e["plain"], e["residual"]

    def measured(kind: str, entry: dict[str, Any], key: str) -> str:
        separated = entry[key.replace("error", "separated")]
        return (f"{kind}-{entry['deep_depth']} {_band_text(entry, 'deep', key)} against {kind}-{entry['shallow_depth']} "
                f"{_band_text(entry, 'shallow', key)}; {_apart(separated)}")

    return [
        Claim(f"A deeper plain net trains to a higher training error (degradation; here: at least {e['factor']:g}x, "
              "bands apart)",
              "He et al. 2015, Fig. 6 left: plain-56 has a higher training error than plain-20 throughout training",
              measured("plain", p, "train_error"), p["train_verdict"]),
        Claim("A deeper residual net trains to no higher training error",
              "He et al. 2015, Fig. 6 middle: ResNet-56 and -110 train to lower error than ResNet-20",
              measured("residual", r, "train_error"), r["train_verdict"]),
        Claim("A deeper plain net has a higher test error",
              "He et al. 2015, Fig. 6 left (bold) and Table 6: plain-56 tests worse than plain-20",
              measured("plain", p, "test_error"), p["test_verdict"]),
        Claim("A deeper residual net has no higher test error",
              "He et al. 2015, Table 6: ResNet-20/32/44/56/110 test at 8.75/7.51/7.17/6.97/6.43 %",
              measured("residual", r, "test_error"), r["test_verdict"]),
    ]


def _error_axis(ax: Axes) -> None:
    ax.set_yscale("symlog", linthresh=LINEAR_BELOW, linscale=0.6)
    ax.set_ylim(0, 100)
    ticks = [t for t in (0, 0.5, 1, 2, 5, 10, 20, 50, 100) if t <= 100]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.grid(alpha=0.3, which="both")


def figure6(results: dict[str, dict[str, Any]]) -> Figure:
    """Training (top) and test (bottom) error (%) against iterations, plain (left) and residual
    (right): per depth the mean over seeds and the min-max band, one colour per depth."""
    fig = Figure(figsize=(12, 8))
    axes = fig.subplots(2, 2, sharex=True, sharey=True)
    depths = sorted({int(r["depth"]) for r in results.values()})
    for col, kind in enumerate(KIND_ORDER):
        for row, (key, what) in enumerate((("train_error", "training"), ("test_error", "test"))):
            ax = axes[row][col]
            for depth in depths:
                rs = sorted((r for r in results.values() if r["kind"] == kind and r["depth"] == depth
                             and r["curve"]["step"]), key=lambda r: r["seed"])
                if rs:
                    plot_band(ax, rs[0]["curve"]["step"], [r["curve"][key] for r in rs], colour=depth_colour(depth),
                              label=f"{kind}-{depth} ({len(rs)} seed{'s' if len(rs) > 1 else ''})", scale=100.0)
            ax.set_title(f"{kind} networks: {what} error")
            _error_axis(ax)
            ax.legend(fontsize=8)
        axes[1][col].set_xlabel("iterations")
    for row in range(2):
        axes[row][0].set_ylabel("error (%): linear below 1, logarithmic above")
    fig.tight_layout()
    return fig


def figure_depth(rows: list[dict[str, Any]]) -> Figure:
    """Final training (left) and test (right) error (%) against depth: plain and residual, the mean
    over seeds with a min-max bar, each point in its depth's colour."""
    fig = Figure(figsize=(12, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    depths = sorted({int(r["depth"]) for r in rows})
    for ax, (key, what) in zip(axes, (("train_error", "training"), ("test_error", "test"))):
        for kind, style, marker in zip(KIND_ORDER, ("--", "-"), ("s", "o")):
            mine = _rows_of(rows, kind)
            if not mine:
                continue
            shift = -0.06 if kind == "plain" else 0.06  # side by side at each depth, not on top of each other
            xs = [depths.index(r["depth"]) + shift for r in mine]
            ax.plot(xs, [100 * r[key] for r in mine], style, color="0.4", lw=1.5, marker=marker, mfc="none",
                    label=kind)
            for x, r in zip(xs, mine):
                lo, hi = 100 * r[key + "_min"], 100 * r[key + "_max"]
                mean = 100 * r[key]
                ax.errorbar([x], [mean], yerr=[[mean - lo], [hi - mean]], fmt=marker,
                            color=depth_colour(r["depth"]), capsize=4, ms=7)
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("depth (layers)")
        ax.set_title(f"final {what} error (mean, min-max over seeds)")
        _error_axis(ax)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("error (%): linear below 1, logarithmic above")
    fig.tight_layout()
    return fig


LOOK_AT_CURVES = (
    "Top left: the deeper plain nets' training error stays above the shallower ones' (the paper's Fig. 6 left: "
    "plain-56 above plain-20 all the way); top right: the residual nets of every depth reach as low a training "
    "error or lower (Fig. 6 middle). "
    "Bottom: the same for the test error; a shaded band is the min-max over seeds, so bands apart mean every "
    "seed agrees, and the error axis is linear below 1 % and logarithmic above, so 0 % and 80 % both show."
)
LOOK_AT_DEPTH = (
    "The dashed plain line climbing to the right is the degradation; the solid residual line staying flat or "
    "falling is the paper's answer to it (Table 6 for the test error). "
    "A bar is the min-max over seeds: where the deepest plain bar sits clear above the shallowest one's, no seed "
    "contradicts the claim."
)

__all__ = ["claims", "effect_text", "figure6", "figure_depth", "ladder_text", "held_out_text"]
