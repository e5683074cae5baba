"""``curves.png``: a run's training curves in one picture.

Three panels against the step: the loss (the training loss at every logged step, the
evaluations' train and validation losses as points) and the top-1 error in %, both on log axes
(small values late in a run stay readable; an error of 0 is drawn at half the smallest non-zero
one, and the axis says so), and the learning rate. The best checkpoint (the
evaluation with the best validation accuracy, ties to the lower loss, as the engine chooses
it) is marked on every panel; the title names the model, the data and the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"train": "tab:blue", "val": "tab:orange", "best": "tab:green"}

def best_step(records: list[dict[str, Any]]) -> int | None:
    """The step of the best validation evaluation, by the engine's rule; None without validation."""
    scored = [r for r in records if "val_acc" in r and "val_loss" in r]
    if not scored:
        return None
    return int(max(scored, key=lambda r: (r["val_acc"], -r["val_loss"], -r["step"]))["step"])


def plot_curves(
    records: list[dict[str, Any]], losses: list[dict[str, Any]], path: Path, *, title: str
) -> None:
    """Draw the evaluation ``records`` (metrics.jsonl) and the logged training ``losses``
    (losses.jsonl: step, loss, lr) into ``path``; nothing when both are empty."""
    if not records and not losses:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_err, ax_lr) = plt.subplots(1, 3, figsize=(15, 4.2))
    if losses:
        ax_loss.plot([r["step"] for r in losses], [r["loss"] for r in losses], lw=1, alpha=0.5, color=COLORS["train"],
                     label="train (logged steps)")
    steps = [r["step"] for r in records]
    splits = [s for s in ("train", "val") if records and all(f"{s}_loss" in r and f"{s}_acc" in r for r in records)]
    errors = {s: [100.0 * (1.0 - r[f"{s}_acc"]) for r in records] for s in splits}
    positive = [e for values in errors.values() for e in values if e > 0]
    floor = min(positive, default=1.0) / 2
    for split in splits:
        style = {"marker": "o" if split == "train" else "s", "ms": 4, "lw": 1, "color": COLORS[split]}
        ax_loss.plot(steps, [r[f"{split}_loss"] for r in records], label=f"{split} (evaluations)", **style)
        ax_err.plot(steps, [max(floor, e) for e in errors[split]], label=split, **style)
    zeros = any(e <= 0 for values in errors.values() for e in values)
    lr_points = sorted({(r["step"], r["lr"]) for r in [*losses, *records] if "lr" in r})
    if lr_points:
        ax_lr.plot([s for s, _ in lr_points], [v for _, v in lr_points], lw=1.2)
    best = best_step(records)
    for ax in (ax_loss, ax_err, ax_lr):
        if best is not None:
            ax.axvline(best, color=COLORS["best"], ls="--", lw=1, label=f"best checkpoint (step {best})")
        ax.grid(alpha=0.3)
    ax_loss.set(xlabel="step", ylabel="loss", title="loss (log scale)")
    ax_err.set(xlabel="step", ylabel="error (%)" + (f"; 0 drawn at {floor:.2g}" if zeros else ""),
               title="top-1 error (log scale)")
    for ax in (ax_loss, ax_err):
        if any(min(line.get_ydata(), default=0) > 0 for line in ax.lines if line.get_label()[:4] != "best"):
            ax.set_yscale("log")
    ax_lr.set(xlabel="step", ylabel="learning rate", title="learning rate")
    for ax in (ax_loss, ax_err, ax_lr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
