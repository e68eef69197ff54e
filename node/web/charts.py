"""Charts of the figures, drawn on the server as SVG (pygal) and shown as ``<img>`` data URIs.

pygal, not matplotlib: pure Python, a chart in about 10 ms and 20 KB of SVG
with no fonts or native libraries to install, where matplotlib takes ten
times that (docs/metrics.md). A chart is an image, so it shows with
JavaScript off (the pages' Content-Security-Policy forbids scripts) and
needs nothing from the internet; its text is drawn with the browser's fonts.
"""

from __future__ import annotations

import base64

import pygal
from pygal.style import Style

STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1d1d1f",
    foreground_strong="#1d1d1f", foreground_subtle="#888888", opacity=".9",
    opacity_hover="1", colors=("#8c1d18", "#9aa5b1", "#0b57a4", "#e0a100", "#3a7d44",
                               "#6b4fa0", "#c0504d", "#4bacc6", "#f79646", "#7f7f7f"),
    font_family='system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif',
    label_font_size=13, major_label_font_size=13, legend_font_size=13, title_font_size=15,
    value_font_size=12)
_CONFIG = {"style": STYLE, "js": [], "disable_xml_declaration": True, "width": 640,
           "height": 320, "legend_at_bottom": True, "print_values": False,
           "show_y_guides": True, "truncate_label": -1, "margin": 12}


def _uri(chart) -> str:
    svg = chart.render(is_unicode=True)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def bars(title: str, labels: list[str], series: list[tuple[str, list[int]]],
         horizontal: bool = False) -> str | None:
    """A bar chart (``None`` when there is nothing to draw)."""
    if not labels or not any(any(v) for _, v in series):
        return None
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    chart = kind(title=title, show_legend=len(series) > 1, **{
        **_CONFIG, "height": max(_CONFIG["height"], 40 + 28 * len(labels)) if horizontal
        else _CONFIG["height"]})
    chart.x_labels = labels
    for name, values in series:
        chart.add(name, values)
    return _uri(chart)


def trend(title: str, months: list[str], now: tuple[str, list[int]],
          last: tuple[str, list[int]]) -> str | None:
    """A line for this year's months beside last year's."""
    if not any(now[1]) and not any(last[1]):
        return None
    chart = pygal.Line(title=title, **_CONFIG)
    chart.x_labels = months
    chart.add(now[0], now[1])
    chart.add(last[0], last[1], stroke_style={"dasharray": "6, 4"})
    return _uri(chart)


def mix(title: str, parts: list[tuple[str, int]]) -> str | None:
    """A pie of the shares of a whole."""
    parts = [(label, n) for label, n in parts if n]
    if not parts:
        return None
    chart = pygal.Pie(title=title, inner_radius=.4, **_CONFIG)
    for label, n in parts:
        chart.add(label, n)
    return _uri(chart)
