#!/usr/bin/env python3
"""Plain SVG pictures of Tandem's result files (issue 18), no plotting library needed.

  bench/plot_svg.py drill FILE.json [OUT.svg]       failover time per fault kind, every
                                                    episode a dot, p50 and p99 marked
  bench/plot_svg.py comparison FILE.json [OUT.svg]  one panel per case of bench/compare.sh:
                                                    median with min-max of every broker

OUT defaults to FILE with .svg. tandem-drill and bench/compare.sh call it after writing their
JSON; it is also run by hand on older results. Exit 0 with the path printed, 1 when the JSON
holds nothing to draw (said on stderr)."""
import json
import math
import sys
from xml.sax.saxutils import escape

COLORS = {"tandem": "#1f77b4", "activemq": "#d62728", "activemq_tuned": "#ff7f0e", "tandem_pg": "#2ca02c",
          "tandem_pg_async": "#9467bd", "activemq_jdbc": "#8c564b"}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]


class Svg:
    def __init__(self, width, height):
        self.width, self.height, self.items = width, height, []

    def add(self, text):
        self.items.append(text)

    def text(self, x, y, s, size=12, anchor="start", weight="normal", color="#222"):
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
                 f'fill="{color}">{escape(str(s))}</text>')

    def line(self, x1, y1, x2, y2, color="#999", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, color, opacity=1.0):
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{color}" '
                 f'fill-opacity="{opacity}"/>')

    def circle(self, x, y, r, color, opacity=0.6):
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}" fill-opacity="{opacity}"/>')

    def render(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.items) + "\n</svg>\n")


def percentile(values, p):
    s = sorted(values)
    if not s:
        return None
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def log_ticks(lo, hi):
    ticks, t = [], 10 ** math.floor(math.log10(lo))
    while t <= hi * 1.0001:
        for m in (1, 2, 5):
            if lo <= t * m <= hi * 1.0001:
                ticks.append(t * m)
        t *= 10
    return ticks


def drill_svg(data, title):
    by_kind = {}
    for f in data.get("failovers", []):
        if isinstance(f.get("ms"), (int, float)):
            by_kind.setdefault(f.get("kind", "?"), []).append(f["ms"])
    if not by_kind:
        return None
    kinds = sorted(by_kind)
    all_ms = [v for vs in by_kind.values() for v in vs]
    lo, hi = max(1.0, min(all_ms) * 0.8), max(all_ms) * 1.25
    left, right, top, row = 130, 40, 60, 34
    width, height = 900, top + row * len(kinds) + 45
    svg = Svg(width, height)
    svg.text(left, 24, title, size=15, weight="bold")
    svg.text(left, 42, f"failover time per fault kind: {len(all_ms)} episodes, lost {data.get('lost', '?')}; "
                       "dots = episodes, | = p50, ! = p99 (log scale)", size=11, color="#555")
    plot_w = width - left - right

    def x_of(ms):
        return left + (math.log10(max(ms, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_w

    bottom = top + row * len(kinds)
    for t in log_ticks(lo, hi):
        svg.line(x_of(t), top - 5, x_of(t), bottom, color="#e5e5e5")
        svg.text(x_of(t), bottom + 16, f"{t:g}", size=10, anchor="middle", color="#555")
    svg.text(left + plot_w / 2, bottom + 34, "milliseconds from fault to the first RECEIPT of the new master",
             size=11, anchor="middle", color="#555")
    for i, kind in enumerate(kinds):
        y = top + row * i + row / 2
        color = PALETTE[i % len(PALETTE)]
        values = by_kind[kind]
        svg.text(left - 8, y + 4, f"{kind} ({len(values)})", size=11, anchor="end")
        svg.line(left, y, left + plot_w, y, color="#f0f0f0")
        for j, v in enumerate(sorted(values)):
            jitter = ((j * 7) % 9 - 4) * 1.6
            svg.circle(x_of(v), y + jitter, 3, color)
        p50, p99 = percentile(values, 50), percentile(values, 99)
        svg.line(x_of(p50), y - 11, x_of(p50), y + 11, color="#000", width=2)
        svg.line(x_of(p99), y - 11, x_of(p99), y + 11, color="#000", width=1, dash="3,2")
        svg.text(left + plot_w + 4, y + 4, f"{p50:.0f}", size=9, color="#333")
    return svg.render()


def comparison_svg(data, title):
    cases = data.get("cases", {})
    panels = [(k, v) for k, v in cases.items() if any((v.get("brokers") or {}).values())]
    if not panels:
        return None
    brokers = []
    for _, v in panels:
        for b in v["brokers"]:
            if v["brokers"][b] and b not in brokers:
                brokers.append(b)
    cols, pw, ph = 3, 290, 210
    rows = math.ceil(len(panels) / cols)
    width, height = cols * pw + 20, rows * ph + 80
    svg = Svg(width, height)
    svg.text(12, 24, title, size=15, weight="bold")
    for i, b in enumerate(brokers):
        x = 12 + i * 150
        svg.rect(x, 36, 12, 12, COLORS.get(b, PALETTE[i % len(PALETTE)]))
        svg.text(x + 16, 46, b, size=11)
    svg.text(12 + len(brokers) * 150, 46, "bar = median, whisker = min..max of the runs", size=11, color="#555")
    for n, (key, case) in enumerate(panels):
        px, py = 12 + (n % cols) * pw, 70 + (n // cols) * ph
        svg.text(px, py + 12, case.get("title", key)[:52], size=10, weight="bold")
        better = "higher is better" if case.get("higher_is_better", True) else "lower is better"
        svg.text(px, py + 26, f"{case.get('metric', '')} ({better})", size=10, color="#555")
        names = [b for b in brokers if case["brokers"].get(b)]  # a broker not run (--only) has no stats
        vmax = max([case["brokers"][b].get("max") or case["brokers"][b].get("median") or 0 for b in names] + [1e-9])
        base, top_y, bw = py + ph - 30, py + 40, (pw - 60) / max(len(names), 1)
        svg.line(px + 10, base, px + pw - 30, base, color="#999")
        for j, b in enumerate(names):
            s = case["brokers"][b]
            med = s.get("median") or 0
            h = (base - top_y) * med / vmax
            x = px + 20 + j * bw
            svg.rect(x, base - h, bw * 0.6, h, COLORS.get(b, PALETTE[j % len(PALETTE)]), 0.85)
            if s.get("min") is not None and s.get("max") is not None:
                xm = x + bw * 0.3
                y1, y2 = base - (base - top_y) * s["min"] / vmax, base - (base - top_y) * s["max"] / vmax
                svg.line(xm, y1, xm, y2, color="#222")
                svg.line(xm - 4, y1, xm + 4, y1, color="#222")
                svg.line(xm - 4, y2, xm + 4, y2, color="#222")
            svg.text(x + bw * 0.3, base + 13, f"{med:,.0f}" if med >= 100 else f"{med:.3g}", size=10, anchor="middle")
    return svg.render()


def main(argv):
    if len(argv) < 3 or argv[1] not in ("drill", "comparison"):
        sys.stderr.write(__doc__)
        return 2
    kind, path = argv[1], argv[2]
    out = argv[3] if len(argv) > 3 else (path[:-5] if path.endswith(".json") else path) + ".svg"
    with open(path) as f:
        data = json.load(f)
    title = f"tandem-drill: {path.rsplit('/', 1)[-1]}" if kind == "drill" else f"Tandem vs ActiveMQ: {path.rsplit('/', 1)[-1]}"
    text = drill_svg(data, title) if kind == "drill" else comparison_svg(data, title)
    if text is None:
        sys.stderr.write(f"plot_svg.py: {path}: nothing to draw (no failovers / no cases)\n")
        return 1
    with open(out, "w") as f:
        f.write(text)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
