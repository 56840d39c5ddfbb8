"""A PNG comparing first-stage and reranked metrics (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from ..errors import optional_import
from .metrics import METRICS


def plot_comparison(result: dict, path: str | Path) -> Path:
    """Grouped bars: one group per metric, first stage vs reranked (when present), values on the bars."""
    matplotlib = optional_import("matplotlib", "retrieval")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    config = result.get("config", {})
    series = [("first stage (" + str(config.get("first_stage", "?")) + ")", result["first_stage"], "#8da0cb")]
    if result.get("reranked"):
        info = config.get("reranker") or {}
        label = (
            f"reranked ({info.get('model', '?')}{', untrained head' if info.get('trained') is False else ''})"
        )
        series.append((label, result["reranked"], "#fc8d62"))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, (label, values, color) in enumerate(series):
        xs = [m + (i - (len(series) - 1) / 2) * width for m in range(len(METRICS))]
        latency = values.get("latency_ms")
        bars = ax.bar(
            xs,
            [values[m] for m in METRICS],
            width,
            color=color,
            label=f"{label}, {latency:.1f} ms/query" if latency is not None else label,
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(range(len(METRICS)), [m.upper().replace("@", "@") for m in METRICS])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score")
    ax.set_title(f"{config.get('dataset', '')}: {result['n_queries']} queries, k={config.get('k', '')}")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
