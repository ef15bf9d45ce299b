"""HTML report: a pure function of the result JSON, rendered by an autoescaped jinja2 template."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from robust.result import Evaluation, write_atomic

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("robust", "report/templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.2%}"


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def _named(label: int, classes: list[str]) -> str:
    """A class index with its name where the dataset gives one: ``3 (cat)``; the index alone otherwise."""
    name = classes[label] if 0 <= label < len(classes) else None
    return str(label) if name is None or name == str(label) else f"{label} ({name})"


_ENV.filters["pct"] = _pct
_ENV.filters["num"] = _num
_ENV.filters["named"] = _named


def render(result: dict[str, Any]) -> str:
    """Render the self-contained HTML report (inline CSS and SVG, no scripts, no network) of a result dict."""
    from robust.report import plots

    figures = {"curve": plots.robustness_curve(result), "histogram": plots.distance_histogram(result),
               "optimality": plots.optimality_curves(result)}
    # The SVGs are drawn by matplotlib from numbers alone (no user text), so they are safe to inline.
    safe = {k: markupsafe.Markup(v) if v else None for k, v in figures.items()}
    return _ENV.get_template("report.html.j2").render(r=result, fig=safe, survey=survey(result))


def survey(result: dict[str, Any]) -> dict[str, Any] | None:
    """A comparison as the survey's table: attacks as rows, frameworks as columns, one cell per run
    (its summary with ``optimality`` added), None where a framework did not run an attack."""
    if not result.get("comparison"):
        return None
    runs = (result["comparison"].get("optimality") or {}).get("runs", [])
    scores = {(r["attack"], r["framework"]): r["optimality"] for r in runs}
    frameworks = list(dict.fromkeys(a["framework"] for a in result["attacks"]))
    rows: dict[str, dict[str, Any]] = {}
    for a in result["attacks"]:
        rows.setdefault(a["name"], {})[a["framework"]] = {**a, "optimality": scores.get((a["name"], a["framework"]))}
    return {"frameworks": frameworks, "rows": rows}


def write_html(result: Evaluation | dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the self-contained HTML report of ``result`` (an Evaluation or its JSON dict) to ``path``, atomically.

    Example:
        >>> robust.write_report(result, "reports/run/report.html")
    """
    data = result.to_dict() if isinstance(result, Evaluation) else result
    return write_atomic(Path(path), render(data))


def render_session(records: list[dict[str, Any]]) -> str:
    """One self-contained HTML page of every robustness assertion of a test session.

    Each record holds ``test`` (the test id), ``min_accuracy``, ``passed`` and ``result``
    (an evaluation's JSON dict).
    """
    return _ENV.get_template("session.html.j2").render(records=records)
