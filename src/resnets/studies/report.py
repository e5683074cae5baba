"""Self-contained study reports: HTML with the plots embedded as base64 PNG, and a Markdown
summary with the same tables. Plots are drawn on ``matplotlib.figure.Figure`` objects (no
pyplot state, no display needed)."""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from matplotlib.figure import Figure


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"table row {row} has {len(row)} cells for {len(self.headers)} headers")


@dataclass
class Plot:
    """One figure of a report: its caption, the PNG (base64) and two lines telling a learner what to
    look at in it (what the paper shows there, and what to compare)."""

    caption: str
    png_base64: str
    look_at: str = ""


@dataclass
class Claim:
    """One claim of the paper checked by the study: what the paper says (with its figure or table),
    what this run measured, and the verdict computed from the data (``shown``, ``not shown``,
    ``opposite``; see :mod:`resnets.studies.bands`)."""

    claim: str
    paper: str
    measured: str
    verdict: str

    def to_dict(self) -> dict[str, str]:
        return {"claim": self.claim, "paper": self.paper, "measured": self.measured, "verdict": self.verdict}


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Plot] = field(default_factory=list)


def figure_png_base64(fig: Figure, *, dpi: int = 110) -> str:
    """A figure as a base64-encoded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def pct(x: float | None, digits: int = 2) -> str:
    """A fraction as a percentage (``-`` when missing)."""
    return "-" if x is None or x != x else f"{100 * x:.{digits}f}"


def environment(device: str, command: str) -> dict[str, str]:
    """How the numbers were measured."""
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "device": device + (f" ({torch.cuda.get_device_name()})"
                            if device.startswith("cuda") and torch.cuda.is_available() else ""),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 10px;text-align:right}"
    "th{background:#eee}img{max-width:100%}figcaption{color:#555;font-size:90%}"
    ".look{font-size:92%;background:#f6f6f0;padding:4px 8px}dl{font-size:90%;color:#444}.claims td{text-align:left}"
)


VERDICT_WORDS = {"opposite": "opposite of the paper"}  # how a verdict reads in a table


def claims_table(claims: list[Claim]) -> Table:
    return Table(headers=["claim", "the paper", "measured here", "verdict"],
                 rows=[[c.claim, c.paper, c.measured, VERDICT_WORDS.get(c.verdict, c.verdict)] for c in claims])


def claims_html(claims: list[Claim]) -> str:
    """The claims table as HTML, its text left-aligned (sentences, not numbers)."""
    return f"<div class='claims'>{html_table(claims_table(claims))}</div>"


def html_page(title: str, body: list[str]) -> str:
    """A whole page in the reports' style: ``title`` as its heading, then the ``body`` parts (HTML)."""
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
                      f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>", *body,
                      "</body></html>"])


def render_html(title: str, sections: list[Section], *, meta: dict[str, str], claims: list[Claim] | None = None) -> str:
    parts: list[str] = []
    if claims:
        parts += ["<h2>The paper's claims, checked</h2>", claims_html(claims)]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(t)}</p>" for t in s.text]
        parts += [html_table(t) for t in s.tables]
        parts += [f"<figure><img src=\"data:image/png;base64,{p.png_base64}\" alt=\"{html.escape(p.caption)}\">"
                  f"<figcaption>{html.escape(p.caption)}</figcaption>"
                  + (f"<p class='look'><b>What to look at:</b> {html.escape(p.look_at)}</p>" if p.look_at else "")
                  + "</figure>" for p in s.images]
    parts.append("<h2>How this was measured</h2><dl>")
    parts += [f"<dt>{html.escape(k)}</dt><dd><code>{html.escape(v)}</code></dd>" for k, v in meta.items()]
    parts.append("</dl>")
    return html_page(title, parts)


def render_markdown(title: str, sections: list[Section], *, meta: dict[str, str],
                    claims: list[Claim] | None = None) -> str:
    parts = [f"# {title}", ""]
    if claims:
        parts += ["## The paper's claims, checked", "", markdown_table(claims_table(claims)), ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        for t in s.text:
            parts += [t, ""]
        for t in s.tables:
            parts += [markdown_table(t), ""]
        if s.images:
            parts += ["Plots (in report.html): " + "; ".join(p.caption for p in s.images) + ".", ""]
            parts += [f"What to look at: {p.look_at}" for p in s.images if p.look_at] + [""]
    parts += ["## How this was measured", ""] + [f"- {k}: `{v}`" for k, v in meta.items()] + [""]
    return "\n".join(parts)


def write_report(out_dir: Path, *, title: str, sections: list[Section], meta: dict[str, str],
                 claims: list[Claim] | None = None) -> tuple[Path, Path]:
    """``report.html`` and ``summary.md`` in ``out_dir`` (and ``claims.json``: the title and the checked
    claims, read by the index of ``resnets study all``); returns the paths of the first two."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out_dir / "report.html", out_dir / "summary.md"
    html_path.write_text(render_html(title, sections, meta=meta, claims=claims), encoding="utf-8")
    md_path.write_text(render_markdown(title, sections, meta=meta, claims=claims), encoding="utf-8")
    (out_dir / "claims.json").write_text(json.dumps(
        {"title": title, "claims": [c.to_dict() for c in claims or []], "meta": meta}, indent=1), encoding="utf-8")
    return html_path, md_path
