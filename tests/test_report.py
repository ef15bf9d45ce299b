"""The HTML report: self-contained, autoescaped, a pure function of the JSON."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import robust
from robust.report import render


def small_result(model: robust.Classifier, data: Any) -> robust.Evaluation:
    return robust.evaluate(model, (data.x[:40], data.y[:40]), ["fgsm", "pgd"], eps=0.1, command="robust evaluate <x>")


def test_report_is_self_contained(tmp_path: Path, digits_model: robust.Classifier, digits: Any) -> None:
    html = robust.write_report(small_result(digits_model, digits), tmp_path / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report must not load anything from the network"
    assert "<script" not in html
    for section in ("summary", "attacks", "environment"):
        assert f'id="{section}"' in html


def test_report_shows_the_numbers(digits_model: robust.Classifier, digits: Any) -> None:
    result = small_result(digits_model, digits)
    html = render(result.to_dict())
    assert f"{result.clean_accuracy:.2%}" in html and f"{result.robust_accuracy:.2%}" in html
    for attack in result.attacks:
        assert f"{attack.robust_accuracy:.2%}" in html


def test_hostile_names_are_escaped(digits_model: robust.Classifier, digits: Any) -> None:
    data = small_result(digits_model, digits).to_dict()
    data["model"] = "<script>alert(1)</script>"
    html = render(data)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "robust evaluate &lt;x&gt;" in html


def test_report_from_json_alone(tmp_path: Path, digits_model: robust.Classifier, digits: Any) -> None:
    result = small_result(digits_model, digits)
    path = result.to_json(tmp_path / "result.json")
    assert robust.write_report(robust.load_result(path), tmp_path / "a.html").read_text() == render(result.to_dict())


def test_curves_from_minimal_distances(tmp_path: Path, zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    result = robust.evaluate(zoo_cnn, (mnist500.x[:60], mnist500.y[:60]), ["deepfool"], eps=1.5, norm="l2")
    html = robust.write_report(result, tmp_path / "r.html").read_text()
    assert 'id="curves"' in html and html.count("<svg") == 2
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert render(result.to_dict()) == html, "the same JSON must give the same HTML"
    assert (tmp_path / "r.html").stat().st_mode & 0o044, "reports are readable by others (they are meant to be sent)"


def test_no_curves_without_successes(digits_model: robust.Classifier, digits: Any) -> None:
    result = robust.evaluate(digits_model, (digits.x[:20], digits.y[:20]), ["fgsm"], eps=0.0)
    html = render(result.to_dict())
    assert 'id="curves"' not in html and "<svg" not in html


def test_examples_grid(tmp_path: Path, zoo_cnn: robust.Classifier, mnist500: Any) -> None:
    import base64
    import io

    import numpy as np
    from PIL import Image

    def decode(data: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))

    result = robust.evaluate(zoo_cnn, (mnist500.x[:40], mnist500.y[:40]), ["pgd"], eps=0.3)
    assert 0 < len(result.examples) <= 8
    for e in result.examples:
        assert e["adversarial_prediction"] != e["label"] and e["attack"] == "pgd"
        assert decode(e["adversarial_png"]).shape == (28, 28)
        clean = (mnist500.x[e["index"], 0] * 255).round().to(dtype=mnist500.x.dtype).numpy().astype(np.uint8)
        assert np.array_equal(decode(e["clean_png"]), clean)
    html = robust.write_report(result, tmp_path / "r.html").read_text()
    assert 'id="examples"' in html and html.count("data:image/png;base64,") == 3 * len(result.examples)
