"""A self-contained HTML report of a run: videos, loss curves, metrics, the commands behind each item.

The page needs nothing but the files beside it: media are linked by relative paths (animated GIFs in
``<img>``, which every browser plays), loss curves are inline SVG drawn from the run's ``log.jsonl``,
and there is no script, font or style sheet from the network. Every piece of text is escaped.

``g3an demo`` (:mod:`g3an.demo`) fills a :class:`Report` and calls :func:`write_report`; any other
caller can do the same for its own run. :func:`replace_section` updates one generated section of a
markdown page (``docs/results.md``) and leaves the rest of the page alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from g3an.train.stats import read_log

__all__ = [
    "MediaItem",
    "MetricRow",
    "Report",
    "Stage",
    "line_chart",
    "render_report",
    "replace_section",
    "section_markers",
    "write_report",
]

#: Colours of the series of a chart, in order (distinguishable, also in grey print).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")

#: The charts drawn from ``log.jsonl``: title and the prefixes of the scalars it shows.
CHARTS = (
    ("Losses", ("loss/",)),
    ("Discriminator outputs (probability of real)", ("D_video/", "D_image/")),
    ("Gradient norms", ("grad_norm/",)),
    ("Seconds per step", ("time/sec_per_step",)),
)


@dataclass
class MediaItem:
    """One video (or image) of the report.

    Attributes:
        title: heading above it.
        path: the media file, relative to the report's directory.
        command: the shell command that writes exactly this file.
        caption: what to look at.
        links: extra files as ``[label, relative path]`` pairs (latents file, MP4, ...).
    """

    title: str
    path: str
    command: str
    caption: str = ""
    links: list[list[str]] = field(default_factory=list)


@dataclass
class MetricRow:
    """One line of the metric table.

    Attributes:
        metric: the protocol name (it carries the sample count, e.g. ``fid128_embedded_actions``).
        value: the value of the report's model.
        baseline: the same metric of a reference model (e.g. the shipped model before fine-tuning), or ``None``.
        better: ``"lower"``, ``"higher"`` or ``""`` (no direction).
        std: spread reported with the value (IS splits, KVD subsets), or ``None``.
        videos: generated videos behind the value (0: not recorded).
        command: the command that computes it.
    """

    metric: str
    value: float
    baseline: float | None = None
    better: str = ""
    std: float | None = None
    videos: int = 0
    command: str = ""


@dataclass
class Stage:
    """One stage of the pipeline that made the run: how long it took and how to redo it.

    Attributes:
        name: short name (``data``, ``train``, ...).
        seconds: wall-clock time of the stage when it ran.
        command: the equivalent shell command(s), one per line.
        note: e.g. that the stage was reused from an earlier invocation.
        cpu_seconds: CPU time of the stage (every thread and child process; ``None``: not measured). On a
            busy machine the wall-clock time grows but this barely does.
    """

    name: str
    seconds: float
    command: str = ""
    note: str = ""
    cpu_seconds: float | None = None


@dataclass
class Report:
    """Everything the page shows.

    Attributes:
        title: page title.
        summary: one paragraph under the title.
        media: the videos, in order.
        metrics: the metric table.
        baseline_name: column heading of :attr:`MetricRow.baseline` (``None``: no such column).
        model_name: column heading of :attr:`MetricRow.value`.
        stages: the stages and their times.
        log: the training log (``log.jsonl``), relative to the report's directory (``None``: no curves).
        facts: machine, time and package versions, shown as a two-column table.
        notes: free paragraphs at the end (limits, warnings).
    """

    title: str
    summary: str = ""
    media: list[MediaItem] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    baseline_name: str | None = None
    model_name: str = "model"
    stages: list[Stage] = field(default_factory=list)
    log: str | None = None
    facts: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Report:
        values = dict(values)
        values["media"] = [MediaItem(**m) for m in values.get("media", [])]
        values["metrics"] = [MetricRow(**m) for m in values.get("metrics", [])]
        values["stages"] = [Stage(**s) for s in values.get("stages", [])]
        return cls(**values)


# -- charts ------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def line_chart(series: dict[str, Sequence[tuple[float, float]]], title: str, x_label: str = "step",
               width: int = 640, height: int = 260) -> str:  # fmt: skip
    """An inline SVG line chart: one polyline per named series of ``(x, y)`` points.

    Non-finite points are dropped; a series with one point is drawn as a dot. Returns ``""`` when no
    series has a point.
    """
    clean = {k: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)] for k, pts in
             series.items()}  # fmt: skip
    clean = {k: v for k, v in clean.items() if v}
    if not clean:
        return ""
    xs = [x for pts in clean.values() for x, _ in pts]
    ys = [y for pts in clean.values() for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 56, 12, 28, 34
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    esc = html.escape
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{left}" y="16" class="chart-title">{esc(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>']  # fmt: skip
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        y = py(yv)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{esc(_fmt(yv))}</text>')
    for i in range(3):
        xv = x0 + (x1 - x0) * i / 2
        anchor = ("start", "middle", "end")[i]
        out.append(f'<text x="{px(xv):.1f}" y="{top + ph + 16}" text-anchor="{anchor}" class="tick">'
                   f"{esc(_fmt(xv))}</text>")  # fmt: skip
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle" class="tick">{esc(x_label)}</text>'
    )
    for i, pts in enumerate(clean.values()):
        colour = PALETTE[i % len(PALETTE)]
        if len(pts) == 1:
            out.append(f'<circle cx="{px(pts[0][0]):.1f}" cy="{py(pts[0][1]):.1f}" r="3" fill="{colour}"/>')
        else:
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    out.append("</svg>")
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{esc(name)}</span>"
        for i, name in enumerate(clean)
    )
    return f'<figure class="chart">{"".join(out)}<figcaption>{legend}</figcaption></figure>'


def charts_from_log(records: Sequence[dict[str, Any]]) -> list[str]:
    """The charts of :data:`CHARTS` from ``log.jsonl`` records (scalars logged as strings are skipped)."""
    out = []
    for title, prefixes in CHARTS:
        series: dict[str, list[tuple[float, float]]] = {}
        for rec in records:
            for key, value in rec.items():
                if any(key.startswith(p) for p in prefixes) and isinstance(value, (int, float)):
                    series.setdefault(key, []).append((rec.get("step", 0), value))
        chart = line_chart(series, title)
        if chart:
            out.append(chart)
    return out


# -- the page ----------------------------------------------------------------------------------------
CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b;
       max-width: 1100px; margin: 0 auto; padding: 1.5em 1.2em 4em; background: #fbfbfa; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { margin: 0 0 0.3em; font-size: 1.05em; }
.summary { color: #444; }
.media { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1.2em; }
.card { background: #fff; border: 1px solid #e3e3e0; border-radius: 8px; padding: 0.8em; }
.card.wide { grid-column: 1 / -1; }
.card img { image-rendering: pixelated; max-width: 100%; height: auto; display: block; border-radius: 4px; }
.card p { margin: 0.4em 0; font-size: 0.92em; color: #444; }
pre { background: #f2f2ef; border-radius: 6px; padding: 0.5em 0.7em; overflow-x: auto; font-size: 0.82em;
      white-space: pre-wrap; word-break: break-all; margin: 0.4em 0; }
code { font-size: 0.92em; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 0.92em; }
th, td { border: 1px solid #e3e3e0; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2ef; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td pre { margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure.chart { margin: 0; background: #fff; border: 1px solid #e3e3e0; border-radius: 8px; padding: 0.5em; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg .plot { fill: #fff; stroke: #ccc; } svg .grid { stroke: #eee; }
svg .tick { font-size: 11px; fill: #555; } svg .chart-title { font-size: 13px; font-weight: 600; fill: #222; }
figcaption { font-size: 0.85em; } .key { margin-right: 1em; white-space: nowrap; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; margin-right: 0.3em;
          vertical-align: -0.1em; }
.links a { margin-right: 0.8em; font-size: 0.88em; }
.note { background: #fff8e5; border-left: 4px solid #e0b000; padding: 0.5em 0.8em; }
"""


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>" if text else ""


def _num(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "&ndash;"
    if not math.isfinite(value):
        return html.escape(str(value))
    text = f"{value:.4g}"
    if std is not None and math.isfinite(std):
        text += f" &plusmn; {std:.2g}"
    return text


def _display_size(path: Path, scale: int = 2, card: int = 400) -> tuple[int, int, bool]:
    """Width and height to show a small image at (an integer zoom, crisp pixels) and whether it needs a wide card."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError):
        return 0, 0, False
    return w * scale, h * scale, w * scale > card


def referenced_files(report: Report) -> list[str]:
    """Every file the page links to, relative to its directory."""
    files = []
    for item in report.media:
        files.append(item.path)
        files.extend(path for _, path in item.links)
    if report.log:
        files.append(report.log)
    return files


def render_report(report: Report, directory: str | Path) -> str:
    """The HTML text of ``report``; ``directory`` is where the page will live (its links are relative to it)."""
    esc = html.escape
    directory = Path(directory)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(report.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(report.title)}</h1>"]  # fmt: skip
    if report.summary:
        parts.append(f'<p class="summary">{esc(report.summary)}</p>')
    for note in report.notes:
        parts.append(f'<p class="note">{esc(note)}</p>')
    if report.media:
        parts.append('<h2 id="videos">Videos</h2><div class="media">')
        for item in report.media:
            links = "".join(f'<a href="{esc(path, quote=True)}">{esc(label)}</a>' for label, path in item.links)
            width, height, wide = _display_size(directory / item.path)
            size = f' width="{width}" height="{height}"' if width else ""
            parts.append(
                f'<div class="card{" wide" if wide else ""}"><h3>{esc(item.title)}</h3>'
                f'<img src="{esc(item.path, quote=True)}" alt="{esc(item.title, quote=True)}"{size}>'
                + (f"<p>{esc(item.caption)}</p>" if item.caption else "")
                + (f'<p class="links">{links}</p>' if links else "")
                + _pre(item.command)
                + "</div>"
            )
        parts.append("</div>")
    if report.log:
        charts = charts_from_log(read_log((directory / report.log).parent))
        parts.append('<h2 id="curves">Training curves</h2>')
        parts.append(f'<p>From <a href="{esc(report.log, quote=True)}">{esc(report.log)}</a>.</p>')
        parts.append('<div class="charts">' + "".join(charts) + "</div>" if charts else "<p>No logged scalars.</p>")
    if report.metrics:
        parts.append('<h2 id="metrics">Metrics</h2><table><tr><th>metric (protocol)</th>'
                     f"<th>{esc(report.model_name)}</th>")  # fmt: skip
        if report.baseline_name:
            parts.append(f"<th>{esc(report.baseline_name)}</th>")
        parts.append("<th>better</th><th>videos</th><th>command</th></tr>")
        for row in report.metrics:
            arrow = {"lower": "lower &darr;", "higher": "higher &uarr;"}.get(row.better, "")
            parts.append(f"<tr><td><code>{esc(row.metric)}</code></td><td class='num'>{_num(row.value, row.std)}</td>")
            if report.baseline_name:
                parts.append(f"<td class='num'>{_num(row.baseline)}</td>")
            parts.append(f"<td>{arrow}</td><td class='num'>{row.videos or ''}</td><td>{_pre(row.command)}</td></tr>")
        parts.append("</table>")
    if report.stages:
        total = sum(s.seconds for s in report.stages)
        cpu = sum(s.cpu_seconds or 0.0 for s in report.stages)
        parts.append('<h2 id="stages">Stages and how to reproduce them</h2><table>'
                     "<tr><th>stage</th><th>wall time</th><th>CPU time</th><th>command</th></tr>")  # fmt: skip
        for s in report.stages:
            note = f"<br><small>{esc(s.note)}</small>" if s.note else ""
            cpu_text = f"{s.cpu_seconds:.1f} s" if s.cpu_seconds is not None else "&ndash;"
            parts.append(f"<tr><td>{esc(s.name)}{note}</td><td class='num'>{s.seconds:.1f} s</td>"
                         f"<td class='num'>{cpu_text}</td><td>{_pre(s.command)}</td></tr>")  # fmt: skip
        parts.append(f"<tr><th>total</th><td class='num'>{total:.1f} s ({total / 60:.1f} min)</td>"
                     f"<td class='num'>{cpu:.1f} s</td><td></td></tr>")  # fmt: skip
        parts.append("</table>")
    if report.facts:
        parts.append('<h2 id="facts">Machine, time and versions</h2><table>')
        parts.extend(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in report.facts.items())
        parts.append("</table>")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p><small>Written {esc(stamp)} by g3an.report.</small></p></body></html>")
    return "\n".join(parts) + "\n"


def write_report(report: Report, directory: str | Path, name: str = "report.html") -> Path:
    """Write ``DIRECTORY/NAME`` (and ``report.json``, the same content as data).

    Raises:
        FileNotFoundError: when a file the page would link to is missing.
    """
    from g3an.checkpoint import atomic_write

    directory = Path(directory)
    missing = [f for f in referenced_files(report) if not (directory / f).is_file()]
    if missing:
        raise FileNotFoundError(f"the report links to missing files in {directory}: {', '.join(missing)}")
    text = render_report(report, directory)
    path = directory / name
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    data = json.dumps(report.to_dict(), indent=1) + "\n"
    atomic_write(directory / "report.json", lambda tmp: Path(tmp).write_text(data, encoding="utf-8"))
    return path


def section_markers(name: str) -> tuple[str, str]:
    """The HTML comments around the generated section ``name`` of a markdown page: start and end."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(path: str | Path, name: str, body: str, new_file: str = "") -> None:
    """Put ``body`` between the lines ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` of a text file.

    The text outside the markers is kept byte for byte. When the file lacks the markers, the block is
    appended after one blank line; when the file does not exist, it is created from ``new_file`` plus the
    block. The file is replaced atomically.

    Args:
        path: the file, e.g. ``docs/results.md``.
        name: the section's name in its markers, e.g. ``paper-tables``.
        body: the text between the marker lines; a final newline is added when missing, so the end marker
            starts its own line.
        new_file: the text before the block when ``path`` does not exist yet, e.g. ``"# Results\n\n"``.
    """
    from g3an.checkpoint import atomic_write

    path = Path(path)
    start, end = section_markers(name)
    if body and not body.endswith("\n"):
        body += "\n"
    block = f"{start}\n{body}{end}"
    text = path.read_text(encoding="utf-8") if path.is_file() else new_file
    i = text.find(start)
    j = text.find(end, i + len(start)) if i >= 0 else -1
    if j >= 0:
        text = text[:i] + block + text[j + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
