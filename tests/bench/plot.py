"""Plot a train_speed JSON summary: TuneForge's figures relative to LLaMA-Factory (= 1.0).

    python -m tests.bench.plot [RESULTS.json] [--ui UI.json] [--html OUT.html] [--png OUT.png]

Default input tests/bench/results/train_speed-latest.json, plus the web UI's start to a usable
page from ui_latency-latest.json when it exists. The HTML is a self-contained plotly
figure; the PNG is that page rendered by the system Chromium through Playwright (no kaleido
needed), small enough to commit (docs/performance.png).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "tests" / "bench" / "results"
BARS = (
    ("wall_s", "wall time<br>(whole run)", 0.5),
    ("ttfs_first_log_s", "start to first<br>logged step", 0.5),
    ("peak_rss_mb", "peak RSS", 1.0),
    ("tokens_per_s", "tokens/s<br>(higher is better)", None),
)


UI_BAR = ("ui_usable_s", "web UI start to<br>usable page", 0.5)


def with_ui_start(summary: dict[str, Any], ui: dict[str, Any]) -> dict[str, Any]:
    """Add the web UI's start-to-usable-page medians (ui_latency.py) as one more figure; the
    "same data again" series has no such figure."""
    start = ui.get("start", {})
    if not start.get("tuneforge") or not start.get("llamafactory"):
        return summary
    ours, theirs = (statistics.median(r["usable_s"] for r in start[t]) for t in ("tuneforge", "llamafactory"))
    medians = {tool: dict(values) for tool, values in summary["medians"].items()}
    ratios = {tool: dict(values) for tool, values in summary["ratios"].items()}
    medians["llamafactory"]["ui_usable_s"] = theirs
    medians["tuneforge-cold"]["ui_usable_s"] = ours
    ratios["tuneforge-cold"]["ui_usable_s"] = ours / theirs
    return {**summary, "medians": medians, "ratios": ratios}


def figure(summary: dict[str, Any]):
    import plotly.graph_objects as go

    medians, ratios = summary["medians"], summary["ratios"]
    lf = medians["llamafactory"]
    bars = BARS + ((UI_BAR,) if "ui_usable_s" in lf else ())
    fig = go.Figure()
    names = {"tuneforge-cold": "TuneForge (first run)", "tuneforge-warm": "TuneForge (same data again)"}
    labels = [label for _, label, _ in bars]
    fig.add_bar(name="LLaMA-Factory 0.9.5", x=labels, y=[1.0] * len(bars), marker_color="#b0b0b0",
                text=[_value(lf[key], key) for key, _, _ in bars], textposition="outside")
    for tool, color in (("tuneforge-cold", "#3b82f6"), ("tuneforge-warm", "#1e3a8a")):
        if tool not in ratios:
            continue
        values = [ratios[tool].get(key) for key, _, _ in bars]
        texts = [f"{r:.2f}x<br>{_value(medians[tool][key], key)}" if r is not None else "" for r, (key, _, _) in zip(values, bars)]
        fig.add_bar(name=names[tool], x=labels, y=values, marker_color=color, text=texts, textposition="outside")
    for i, (_, _, goal) in enumerate(bars):
        if goal is not None:
            fig.add_shape(type="line", x0=i - 0.45, x1=i + 0.45, y0=goal, y1=goal, line=dict(color="#dc2626", dash="dash"))
    load = summary.get("load_note", "")
    fig.update_layout(
        title=f"TuneForge vs LLaMA-Factory, LoRA SFT on 2 CPU cores (median of {summary.get('runs', '?')}; "
              f"LLaMA-Factory = 1.0, red dashes = goal){load}",
        barmode="group", yaxis_title="relative to LLaMA-Factory", template="plotly_white", width=1000, height=520,
        legend=dict(orientation="h", y=-0.18), margin=dict(t=70, b=90), font=dict(size=13),
    )
    fig.update_yaxes(range=[0, max(4.0, 1.15 * max(ratios[t]["tokens_per_s"] or 0 for t in ratios))])
    return fig


def _value(v: Any, key: str) -> str:
    if v is None:
        return ""
    unit = {"wall_s": " s", "ttfs_first_log_s": " s", "peak_rss_mb": " MB", "tokens_per_s": " tok/s", "ui_usable_s": " s"}[key]
    return f"{v:,.0f}{unit}" if v >= 100 else f"{v:.1f}{unit}"


def to_png(html: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1000, "height": 520})
        page.goto(html.resolve().as_uri())
        page.wait_for_selector(".main-svg", timeout=30_000)
        page.screenshot(path=str(png), full_page=False)
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.plot")
    parser.add_argument("summary", nargs="?", type=Path, default=RESULTS / "train_speed-latest.json")
    parser.add_argument("--ui", type=Path, default=RESULTS / "ui_latency-latest.json",
                        help="ui_latency.py's summary (skipped when missing)")
    parser.add_argument("--html", type=Path, default=RESULTS / "train_speed.html")
    parser.add_argument("--png", type=Path, default=None, help="also render a PNG (e.g. docs/performance.png)")
    args = parser.parse_args(argv)
    summary = json.loads(args.summary.read_text(encoding="utf-8"))
    if "llamafactory" not in summary.get("medians", {}):
        print("error: the summary has no LLaMA-Factory runs to compare with", file=sys.stderr)
        return 2
    if args.ui.is_file():
        summary = with_ui_start(summary, json.loads(args.ui.read_text(encoding="utf-8")))
    loads = [r.get("load_before") for rs in summary.get("tools", {}).values() for r in rs if r.get("load_before") is not None]
    if loads:
        summary["load_note"] = f"<br><sup>load average during the runs: {min(loads):.2f}–{max(loads):.2f}</sup>"
    args.html.parent.mkdir(parents=True, exist_ok=True)
    figure(summary).write_html(str(args.html), include_plotlyjs=True, full_html=True)
    print(f"html: {args.html}")
    if args.png:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        to_png(args.html, args.png)
        print(f"png: {args.png} ({args.png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
