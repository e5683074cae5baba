"""The gradient study: the gradient at every layer, and the scale of the activations, of plain
and residual networks of several depths, at initialisation and after some training.

Per network it records, on one fixed batch (training mode, as in a step): the RMS gradient
of every convolution's weight (norm / sqrt(size), so layers of different sizes compare), in
forward order, the standard deviation of every unit's output, and the ratio of the first
layer's RMS gradient to the last convolution's. A ratio near 1 means the gradient keeps its
scale across the depth; |log10(ratio)| is how many orders of magnitude it drifts.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from resnets.models.blocks import is_unit
from resnets.studies.bands import NOT_SHOWN, OPPOSITE, SHOWN, Band, band, compare, depth_colour, plot_band
from resnets.studies.nets import NetSpec
from resnets.studies.pool import Result
from resnets.studies.recipe import Recipe
from resnets.studies.report import (
    VERDICT_WORDS,
    Claim,
    Plot,
    Section,
    Table,
    environment,
    figure_png_base64,
    pct,
    write_report,
)
from resnets.studies.trainer import prepare, train_chunks

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The convolutions in forward order (stem, then each unit's main path)."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def measure(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Any]:
    """Gradients and activation scales of one forward/backward pass on x (N, C, H, W), y (N,),
    in training mode, on a copy (the model's weights and BN statistics are untouched)."""
    net = copy.deepcopy(model).train()
    units = [m for m in net.modules() if is_unit(m)]
    stds: list[float] = []
    hooks = [u.register_forward_hook(lambda _m, _i, out: stds.append(float(out.detach().float().std())))
             for u in units]
    try:
        loss = nn.functional.cross_entropy(net(x).float(), y)  # (N, K) logits
        net.zero_grad(set_to_none=True)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    convs = conv_layers(net)
    norms = [float(c.weight.grad.norm()) for c in convs]  # type: ignore[union-attr]
    rms = [n / math.sqrt(c.weight.numel()) for n, c in zip(norms, convs)]
    ratio = rms[0] / rms[-1] if rms[-1] > 0 else math.inf
    return {"loss": float(loss.detach()), "grad_norm": norms, "grad_rms": rms, "act_std": stds,
            "first_last_ratio": ratio, "log10_spread": abs(math.log10(ratio)) if 0 < ratio < math.inf else math.inf}


def fixed_batch(loader: Any, *, size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The first ``size`` images of a loader (evaluation transform for the studies' loaders)."""
    xs, ys, n = [], [], 0
    for x, y in loader.epoch(0):
        xs.append(x)
        ys.append(y)
        n += int(y.shape[0])
        if n >= size:
            break
    return torch.cat(xs)[:size].to(device), torch.cat(ys)[:size].to(device)  # (size, C, H, W), (size,)


def gradient_task(task: tuple[NetSpec, Recipe], device: str) -> Result:
    """Measure ``spec`` at initialisation, train it ``recipe.iterations`` steps, measure again."""
    spec, recipe = task
    p = prepare(spec, recipe, device=device)
    x, y = fixed_batch(p.train_eval, size=recipe.batch_size, device=p.runtime.device)
    at_init = measure(p.state.model, x, y)
    curve: dict[str, list[float]] = {k: [] for k in
                                     ("step", "train_error", "test_error", "running_train_error", "train_loss", "lr")}
    diverged = train_chunks(p, recipe, curve=curve)
    trained = measure(p.state.model, x, y)
    return {"key": spec.key, "kind": spec.kind, "depth": spec.depth, "seed": spec.seed, "steps": p.state.step,
            "diverged_at": diverged, "init": at_init, "trained": trained,
            "train_error": curve["train_error"][-1] if curve["train_error"] else math.nan,
            "test_error": curve["test_error"][-1] if curve["test_error"] else math.nan}


def init_ratio(spec: NetSpec, *, x: Tensor, y: Tensor, num_classes: int) -> float:
    """The first-to-last RMS gradient ratio of a freshly initialised network (one batch, cheap)."""
    from resnets.studies.nets import build_net

    torch.manual_seed(spec.seed)
    net = build_net(depth=spec.depth, kind=spec.kind, num_classes=num_classes, in_chans=int(x.shape[1]),
                    image_size=int(x.shape[-1]))
    return float(measure(net, x, y)["first_last_ratio"])


# -- the study: run, plot, report ----------------------------------------------------------

TITLE = "Gradient flow: plain against residual networks"
PHASES = {"init": "at initialisation", "trained": "after training"}
# A drift of more than this many orders of magnitude (10x) over the added depth is "vanishing"
# (the first layers get less, relative to the last) or "exploding" (they get more); within it, "healthy".
ORDERS = 1.0
PAPER = "He et al. 2015, sec. 4.1"


def describe(r: Result) -> str:
    return (f"{r['kind']:>8}-{r['depth']:<4} seed {r['seed']}: first/last RMS gradient "
            f"{r['init']['first_last_ratio']:.3g} at init, {r['trained']['first_last_ratio']:.3g} after "
            f"{r['steps']} iterations (train error {100 * r['train_error']:.1f}%)")


def _runs(results: dict[str, Result], kind: str, depth: int) -> list[Result]:
    return sorted((r for r in results.values() if r["kind"] == kind and r["depth"] == depth), key=lambda r: r["seed"])


def gradient_figure(results: dict[str, Result], *, key: str, ylabel: str, xlabel: str) -> Figure:
    """One panel per phase: ``key`` (a per-layer list) on a log scale against layer index, the mean
    over seeds with its min-max band, one colour per depth (solid plain, dashed residual)."""
    from matplotlib.figure import Figure

    from resnets.studies.nets import KINDS

    depths = sorted({int(r["depth"]) for r in results.values()})
    fig = Figure(figsize=(12, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (phase, name) in zip(axes, PHASES.items()):
        for kind in KINDS:
            for depth in depths:
                runs = [r[phase][key] for r in _runs(results, kind, depth)]
                if runs:
                    plot_band(ax, range(1, len(runs[0]) + 1), runs, colour=depth_colour(depth),
                              label=f"{kind}-{depth}", style="-" if kind == "plain" else "--", lw=1.6)
        ax.set_yscale("log")
        ax.set_title(f"{name} (solid: plain, dashed: residual)")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(ylabel)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return fig


def gradient_rows(results: dict[str, Result]) -> list[dict[str, Any]]:
    return [{"kind": r["kind"], "depth": r["depth"], "seed": r["seed"], "steps": r["steps"],
             "init_ratio": r["init"]["first_last_ratio"], "trained_ratio": r["trained"]["first_last_ratio"],
             "init_first_rms": r["init"]["grad_rms"][0], "init_last_rms": r["init"]["grad_rms"][-1],
             "trained_first_rms": r["trained"]["grad_rms"][0], "trained_last_rms": r["trained"]["grad_rms"][-1],
             "init_act_ratio": _act_ratio(r["init"]["act_std"]), "trained_act_ratio": _act_ratio(r["trained"]["act_std"]),
             "train_error": r["train_error"]}
            for r in sorted(results.values(), key=lambda r: (r["seed"], r["kind"], r["depth"]))]


def _act_ratio(stds: list[float]) -> float:
    """The last unit's output std over the first unit's."""
    return stds[-1] / stds[0] if stds and stds[0] > 0 else math.nan


def _log10(x: float) -> float:
    return math.log10(x) if 0 < x < math.inf else math.nan


def drift(rows: list[dict[str, Any]], *, kind: str, column: str) -> Band | None:
    """Per seed, how many orders of magnitude ``column`` (a last-to-first or first-to-last ratio)
    moves from the shallowest to the deepest net of ``kind`` (same seed): the band over seeds."""
    mine = [r for r in rows if r["kind"] == kind]
    if len({r["depth"] for r in mine}) < 2:
        return None
    lo, hi = min(r["depth"] for r in mine), max(r["depth"] for r in mine)
    shallow = {r["seed"]: r[column] for r in mine if r["depth"] == lo}
    values = [_log10(r[column]) - _log10(shallow[r["seed"]]) for r in mine if r["depth"] == hi and r["seed"] in shallow]
    return band(values) if values else None


def drift_kind(d: Band) -> str:
    """``vanishing`` / ``exploding`` when every seed drifts by more than :data:`ORDERS` orders of
    magnitude down / up, ``healthy`` when every seed stays within them, else ``mixed``."""
    if d.hi < -ORDERS:
        return "vanishing"
    if d.lo > ORDERS:
        return "exploding"
    if -ORDERS <= d.lo and d.hi <= ORDERS:
        return "healthy"
    return "mixed"


def verdict_not_vanishing(d: Band) -> str:
    """The paper's "does not vanish": shown when no seed vanishes, opposite when every seed does."""
    if d.n < 2 or any(v != v for v in d.values):
        return NOT_SHOWN
    return SHOWN if d.lo >= -ORDERS else OPPOSITE if d.hi < -ORDERS else NOT_SHOWN


def verdict_healthy(d: Band) -> str:
    """The paper's "healthy norms": shown when every seed stays within :data:`ORDERS`, opposite when
    every seed vanishes or every seed explodes."""
    if d.n < 2 or any(v != v for v in d.values):
        return NOT_SHOWN
    return {"healthy": SHOWN, "vanishing": OPPOSITE, "exploding": OPPOSITE}.get(drift_kind(d), NOT_SHOWN)


def _orders(d: Band) -> str:
    """A drift band in words: ``x10^3.29 (3.10 to 3.45 orders)``."""
    if d.n == 1:
        return f"x10^{d.mean:+.2f} (one seed)"
    return f"x10^{d.mean:+.2f} ({d.lo:+.2f} to {d.hi:+.2f} orders of magnitude over {d.n} seeds)"


def gradient_effect(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase: the drift bands (orders of magnitude from the shallowest to the deepest net) of the
    first-to-last gradient ratio and of the last-to-first activation ratio, per kind; the residual
    net's gradient drift against the plain net's; the training errors of the plain nets."""
    deepest, shallowest = max(r["depth"] for r in rows), min(r["depth"] for r in rows)
    out: dict[str, Any] = {"depth": deepest, "shallow_depth": shallowest}
    for phase in PHASES:
        e: dict[str, Any] = {}
        for kind in ("plain", "residual"):
            g = drift(rows, kind=kind, column=f"{phase}_ratio")
            a = drift(rows, kind=kind, column=f"{phase}_act_ratio")
            if g is not None and a is not None:
                e[kind] = {"grad_drift": g.to_dict(), "grad_kind": drift_kind(g), "act_drift": a.to_dict(),
                           "act_kind": drift_kind(a), "not_vanishing": verdict_not_vanishing(g),
                           "healthy": verdict_healthy(g), "act_not_vanishing": verdict_not_vanishing(a)}
        if "plain" in e and "residual" in e:
            p, q = (band([abs(v) for v in e[k]["grad_drift"]["values"]]) for k in ("plain", "residual"))
            e["residual_flatter"] = compare(higher=p, lower=q).verdict
            out[phase] = e
    errors = {d: band([r["train_error"] for r in rows if r["kind"] == "plain" and r["depth"] == d])
              for d in (shallowest, deepest)}
    if deepest != shallowest and all(b.n for b in errors.values()):
        out["plain_degrades"] = compare(higher=errors[deepest], lower=errors[shallowest], factor=2.0).to_dict()
    return out


def gradient_claims(eff: dict[str, Any], *, steps: int) -> list[Claim]:
    """The paper's claims (and the residual nets' one), each with what was measured and its verdict."""
    deep, shallow = eff["depth"], eff["shallow_depth"]
    claims = []
    for phase, name in PHASES.items():
        if phase not in eff:
            continue
        e = eff[phase]
        where = name if phase == "init" else f"after {steps} iterations"
        g, a = Band(tuple(e["plain"]["grad_drift"]["values"])), Band(tuple(e["plain"]["act_drift"]["values"]))
        claims += [
            Claim(f"{where}: the backward gradients of the deep plain net (with BN) do not vanish",
                  f"{PAPER}: 'unlikely to be caused by vanishing gradients'",
                  f"plain-{deep} against plain-{shallow}: first/last RMS gradient {_orders(g)}: {drift_kind(g)}",
                  e["plain"]["not_vanishing"]),
            Claim(f"{where}: ... and exhibit healthy norms (within 10x over the added depth)",
                  f"{PAPER}: 'backward propagated gradients exhibit healthy norms'",
                  f"{drift_kind(g)} ({_orders(g)})", e["plain"]["healthy"]),
            Claim(f"{where}: the forward signals of the deep plain net keep non-zero variance",
                  f"{PAPER}: 'BN ... ensures forward propagated signals to have non-zero variances'",
                  f"last/first unit output std, plain-{deep} against plain-{shallow}: {_orders(a)}: {drift_kind(a)}",
                  e["plain"]["act_not_vanishing"]),
            Claim(f"{where}: the residual net's gradient drifts less with depth than the plain net's",
                  "He et al. 2016 (Identity Mappings), eq. 5: the shortcut carries the gradient to every unit",
                  f"|drift| residual {_orders(Band(tuple(abs(v) for v in e['residual']['grad_drift']['values'])))}"
                  f" against plain {_orders(Band(tuple(abs(v) for v in g.values)))}", e["residual_flatter"]),
        ]
    if "plain_degrades" in eff:
        c = eff["plain_degrades"]
        hi, lo = Band(tuple(c["higher"]["values"])), Band(tuple(c["lower"]["values"]))
        claims.append(Claim(f"the deep plain net is harder to optimise: plain-{deep} trains to at least twice "
                            f"plain-{shallow}'s training error",
                            "He et al. 2015, sec. 4.1 and Fig. 6: degradation is an optimisation difficulty",
                            f"after {steps} iterations: plain-{deep} {hi.text()} against plain-{shallow} {lo.text()}",
                            c["verdict"]))
    return claims


def effect_sentence(eff: dict[str, Any], phase: str) -> str:
    """What was measured in ``phase``, in plain words, against the paper's claim."""
    e = eff[phase]
    deep, shallow = eff["depth"], eff["shallow_depth"]
    p, r = e["plain"], e["residual"]
    head = "At initialisation" if phase == "init" else "After training"
    verdicts = {"vanishing": "the gradients vanish towards the input",
                "exploding": "the gradients grow (explode) towards the input; they do not vanish",
                "healthy": "the gradients keep their scale (healthy, within 10x)",
                "mixed": "the seeds disagree (some within 10x, some beyond)"}
    return (f"{head}, plain-{deep} against plain-{shallow}: the first layer's RMS gradient, relative to the last "
            f"layer's, moves by {_orders(_band(p['grad_drift']))}: {verdicts[p['grad_kind']]}. "
            f"Residual-{deep} against residual-{shallow}: {_orders(_band(r['grad_drift']))}: {r['grad_kind']}. "
            f"The paper (sec. 4.1) says the plain nets' gradients do not vanish and have healthy norms; "
            f"measured here: 'do not vanish' {_words(p['not_vanishing'])}, 'healthy norms' {_words(p['healthy'])}.")


def _words(verdict: str) -> str:
    return VERDICT_WORDS.get(verdict, verdict)


def _band(d: dict[str, Any]) -> Band:
    return Band(tuple(d["values"]))


def run_gradients(recipe: Recipe, *, out_dir: Path, device: str = "cpu", workers: int | None = None,
                  quiet: bool = False, command: str = "resnets study gradients") -> dict[str, Any]:
    from resnets.studies.degradation import check_run_dir, specs_for
    from resnets.studies.pool import PoolOptions, run_tasks, write_json

    check_run_dir(out_dir, study="gradients", recipe=recipe)
    specs = specs_for(recipe)
    results = run_tasks([(s, recipe) for s in specs], fn=gradient_task, keys=[s.key for s in specs],
                        options=PoolOptions(out_dir=out_dir, device=device, workers=workers, quiet=quiet,
                                            describe=describe))
    rows = gradient_rows(results)
    eff = gradient_effect(rows)
    claims = gradient_claims(eff, steps=recipe.iterations)
    write_json(out_dir / "results.json", {"rows": rows, "effect": eff, "claims": [c.to_dict() for c in claims],
                                          "recipe": recipe.to_dict()})
    report, summary = write_report(out_dir, title=TITLE, sections=gradient_sections(results, rows, eff, recipe),
                                   meta=environment(device, command), claims=claims)
    return {"rows": rows, "effect": eff, "claims": claims, "results": results, "report": report, "summary": summary}


def gradient_sections(results: dict[str, Result], rows: list[dict[str, Any]], eff: dict[str, Any],
                      recipe: Recipe) -> list[Section]:
    deep, shallow = eff["depth"], eff["shallow_depth"]
    table = Table(
        headers=["network", "depth", "seed", "first/last at init", "first/last trained", "first RMS grad (init)",
                 "last RMS grad (init)", "train error % (trained)"],
        rows=[[r["kind"], str(r["depth"]), str(r["seed"]), f"{r['init_ratio']:.3g}", f"{r['trained_ratio']:.3g}",
               f"{r['init_first_rms']:.3g}", f"{r['init_last_rms']:.3g}", pct(r["train_error"])] for r in rows])
    epochs = recipe.iterations * recipe.batch_size
    text = [effect_sentence(eff, phase) for phase in PHASES if phase in eff]
    text.append(
        f"How far trained: {recipe.iterations} iterations of batch {recipe.batch_size} ({epochs:,} images seen) at "
        f"lr {recipe.lr}" + (f" divided by 10 at {list(recipe.milestones)}" if recipe.milestones else "") +
        f" (SGD momentum {recipe.momentum}, weight decay {recipe.weight_decay}); the training errors reached are in "
        "the table's last column. Measured on one fixed batch of "
        f"{recipe.batch_size} training images of {recipe.data} (training mode, as in a step). RMS gradient = "
        "gradient norm / sqrt(weight count); first/last = the first convolution's RMS gradient over the last "
        f"convolution's. A drift is how far that ratio moves from depth {shallow} to depth {deep}, seed by seed; "
        "more than one order of magnitude (10x) down is called vanishing, up exploding, within it healthy.")
    look_grad = (f"The paper says the gradients of deep plain nets with BN neither vanish nor blow up. Follow the solid "
                 f"line of plain-{deep} from the last layer (right) to the first (left): rising means the gradient "
                 f"grows towards the input, falling means it vanishes; compare the dashed residual-{deep} line.")
    look_act = ("BN keeps every unit's output at a non-zero scale (the paper's argument): the lines should stay "
                "level, plain (solid) as well as residual (dashed); a line falling towards zero would be "
                "vanishing forward signals.")
    return [
        Section("Result", text=text, tables=[table]),
        Section("Gradient at every layer", images=[Plot(
            "RMS gradient of each convolution's weight against layer index (log scale); mean over seeds, shaded "
            "min-max", figure_png_base64(gradient_figure(results, key="grad_rms", ylabel="RMS gradient",
                                                         xlabel="layer (1 = the first convolution)")), look_grad)]),
        Section("Scale of the activations", images=[Plot(
            "standard deviation of each unit's output against unit index (log scale); mean over seeds, shaded min-max",
            figure_png_base64(gradient_figure(results, key="act_std", ylabel="output std", xlabel="unit")), look_act)]),
    ]
