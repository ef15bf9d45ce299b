"""Figures for the report, rendered by matplotlib to inline SVG from the result JSON alone."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue and doctype: the SVG sits inside HTML


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams["svg.hashsalt"] = "robust"  # stable ids, so the same JSON gives the same HTML
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, and selectable
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 3.2), dpi=100)


def _distances(result: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Smallest perturbation found per correctly classified sample (inf where none), and n."""
    key = result["norm"]
    found = [s[key] if s[key] is not None else math.inf
             for s in result["samples"] if s["label"] == s["clean_prediction"]]
    return np.asarray(found, dtype=float), len(result["samples"])


MARKERS = "osD^v<>"


def robustness_curve(result: dict[str, Any]) -> str | None:
    """Robust accuracy against eps: measured at each evaluated eps (per attack and worst case), and
    from the smallest perturbation found per sample in between."""
    found, n = _distances(result)
    sweep = result.get("sweep") or []
    if n == 0 or (not np.isfinite(found).any() and not sweep):
        return None
    finite = found[np.isfinite(found)]
    top = max(float(result["eps"]), float(finite.max()) if len(finite) else 0.0) * 1.05
    grid = np.linspace(0.0, top, 200)
    accuracy = [(found > e).sum() / n for e in grid]
    fig, ax = _figure()
    ax.plot(grid, accuracy, color="#0b5cad", label="smallest perturbation found")
    if sweep:
        levels = [entry["eps"] for entry in sweep]
        for i, attack in enumerate(sweep[-1]["attacks"]):
            values = [entry["attacks"][i]["robust_accuracy"] for entry in sweep]
            ax.plot(levels, values, marker=MARKERS[i % len(MARKERS)], linestyle=":", linewidth=1, alpha=0.8,
                    label=f"after {attack['name']}" if result.get("cascade", True) else attack["name"])
        ax.plot(levels, [entry["robust_accuracy"] for entry in sweep], marker="o", color="#111111",
                label="worst case (measured)")
    ax.axvline(float(result["eps"]), color="#9a6700", linestyle="--", label=f"evaluated eps = {result['eps']:.4g}")
    ax.set_xlabel(f"eps ({_unit(result['norm'])})")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", frameon=False)
    return _svg(fig)


def _unit(norm: str) -> str:
    """What a distance in ``norm`` counts: input-space size, or changed components for L0."""
    return "l0: input components changed" if norm == "l0" else f"{norm}, input space"


def distance_histogram(result: dict[str, Any]) -> str | None:
    """Distribution of the smallest perturbations found."""
    found, _ = _distances(result)
    finite = found[np.isfinite(found)]
    if len(finite) == 0:
        return None
    fig, ax = _figure()
    ax.hist(finite, bins=min(30, max(5, len(finite) // 4)), color="#0b5cad", alpha=0.85)
    ax.axvline(float(result["eps"]), color="#9a6700", linestyle="--")
    ax.set_xlabel(f"smallest perturbation found ({_unit(result['norm'])})")
    ax.set_ylabel("samples")
    ax.grid(alpha=0.3)
    return _svg(fig)


def optimality_curves(result: dict[str, Any]) -> str | None:
    """A comparison's robust accuracy against distance per minimal-norm run, with the per-point best over all."""
    table = (result.get("comparison") or {}).get("optimality") or {}
    runs = [r for r in table.get("runs", []) if r["curve"]]
    if not runs or not table.get("best"):
        return None
    fig, ax = _figure()
    best = np.asarray(table["best"], dtype=float)
    ax.plot(best[:, 0], best[:, 1], color="#111111", linewidth=2, label="best per point (all runs)")
    for i, run in enumerate(runs):
        points = np.asarray(run["curve"], dtype=float)
        score = "" if run["optimality"] is None else f" ({run['optimality']:.3f})"
        ax.plot(points[:, 0], points[:, 1], linestyle="--", linewidth=1, marker=MARKERS[i % len(MARKERS)],
                markevery=8, markersize=3, label=f"{run['attack']} / {run['framework']}{score}")
    ax.axvline(float(result["eps"]), color="#9a6700", linestyle=":", label=f"eps = {result['eps']:.4g}")
    ax.set_xlabel(f"distance ({_unit(result['norm'])})")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", frameon=False, fontsize=7)
    return _svg(fig)
