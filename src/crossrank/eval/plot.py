"""A PNG comparing first-stage and reranked metrics, with a reliability diagram of the reranked
scores when there are any (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInputError, optional_import
from .metrics import METRICS


def check_plot_path(path: str | Path) -> Path:
    """``path`` as a file matplotlib can write, its folder created: checked before an evaluation runs, so
    that a bad name does not lose its results. A folder, or a name without an image extension (matplotlib
    would add ``.png`` or refuse the format), is an :class:`InvalidInputError`."""
    optional_import("matplotlib", "retrieval")
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"--plot {path} is a folder; pass a file name such as {path / 'eval.png'}")
    kinds = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in kinds:
        raise InvalidInputError(
            f"--plot {path}: name the file with an image extension, e.g. {path.with_suffix('.png').name} "
            f"(supported: {', '.join(sorted(kinds))})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def plot_comparison(result: dict, path: str | Path) -> Path:
    """Grouped bars: one group per metric, first stage vs reranked (when present), values on the bars;
    beside them, the reliability diagram of ``result["scores"]`` when the list was reranked."""
    path = check_plot_path(path)
    matplotlib = optional_import("matplotlib", "retrieval")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    scores = result.get("scores")
    if scores:
        fig, (ax, ax_rel) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110, width_ratios=(2, 1))
        _reliability(ax_rel, scores["calibration"])
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    _metric_bars(ax, result)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _metric_bars(ax, result: dict) -> None:
    config = result.get("config", {})
    series = [("first stage (" + str(config.get("first_stage", "?")) + ")", result["first_stage"], "#8da0cb")]
    if result.get("reranked"):
        info = config.get("reranker") or {}
        label = (
            f"reranked ({info.get('model', '?')}{', untrained head' if info.get('trained') is False else ''})"
        )
        series.append((label, result["reranked"], "#fc8d62"))
    width = 0.8 / len(series)
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
    ax.set_xticks(range(len(METRICS)), [m.upper() for m in METRICS])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score")
    ax.set_title(f"{config.get('dataset', '')}: {result['n_queries']} queries, k={config.get('k', '')}")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def _reliability(ax, calibration: dict) -> None:
    """Share relevant against mean score per bin (marker area ~ pairs); the diagonal is perfect."""
    bins = calibration["bins"]
    ax.plot([0, 1], [0, 1], color="#999999", linewidth=1, linestyle="--", label="calibrated")
    if bins:
        most = max(b["pairs"] for b in bins)
        ax.plot([b["mean_score"] for b in bins], [b["share_relevant"] for b in bins], color="#fc8d62")
        ax.scatter(
            [b["mean_score"] for b in bins],
            [b["share_relevant"] for b in bins],
            s=[20 + 180 * b["pairs"] / most for b in bins],
            color="#fc8d62",
            zorder=3,
            label="reranked scores",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("score (mean per bin)")
    ax.set_ylabel("share relevant")
    if bins:
        ax.set_title(f"reliability: ECE {calibration['ece']:.3f}, Brier {calibration['brier']:.3f}")
    else:
        ax.set_title("reliability: no scored pairs")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
