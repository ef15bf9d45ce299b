"""Preprocessing defenses: exactness of the transforms, gradient modes, adaptive vs naive evaluation."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import robust
from tests.fixtures.defenses import NoisyInput
from robust.defenses.jpeg import jpeg_codec, jpeg_tensor
from robust.defenses.spatial_smoothing import median_filter
from robust.evaluation.checks import Context, defense_gradients, randomized_forward
from robust.defense import naive_model, undefended
from robust.testing import CHECKS, Case, small_digits_model

PREPROCESSING = ["jpeg", "feature-squeezing", "spatial-smoothing"]


def test_registry_lists_every_defense() -> None:
    assert set(robust.list_defenses()) >= {*PREPROCESSING, "adversarial-training"}


@pytest.mark.parametrize(("name", "params", "message"), [
    ("jpeg", {"quality": 0}, "quality must be"),
    ("jpeg", {"qualty": 50}, "did you mean 'quality'"),
    ("spatial-smoothing", {"window": 1}, "window must be"),
    ("feature-squeezing", {"bit_depth": 0}, "bit_depth must be"),
    ("jpeg", {"gradient": "magic"}, "gradient must be one of bpda, approx, exact"),
    ("spatial-smoothing", {"gradient": "approx"}, "gradient must be one of bpda, exact"),
])
def test_bad_parameters_are_named(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(robust.RobustError, match=message):
        robust.create_defense(name, **params).wrap(small_digits_model())


def test_unknown_defense_suggests_a_name() -> None:
    with pytest.raises(robust.RobustError, match="did you mean 'jpeg'"):
        robust.create_defense("jepg")


def test_training_defense_does_not_wrap() -> None:
    with pytest.raises(robust.RobustError, match="produces a model"):
        robust.create_defense("adversarial-training").wrap(small_digits_model())


def test_tensor_jpeg_matches_the_real_codec_on_mnist(mnist500: Any) -> None:
    pixels = mnist500.x[:256] * 255
    for quality in (25, 75, 95):
        diff = (jpeg_tensor(pixels, quality) - jpeg_codec(pixels, quality)).abs()
        assert float(diff.mean()) < 0.1, f"quality {quality}: mean difference {float(diff.mean()):.3f} grey levels"
        assert float((diff > 0).float().mean()) < 0.05, f"quality {quality}: over 5% of pixels differ"
        assert float((diff > 2).float().mean()) < 0.005, f"quality {quality}: 0.5% of pixels differ by over 2 levels"


def test_tensor_jpeg_matches_the_real_codec_on_colour_images() -> None:
    import foolbox
    from PIL import Image

    folder = os.path.join(os.path.dirname(foolbox.__file__), "data")
    files = sorted(f for f in os.listdir(folder) if f.startswith("cifar10_"))
    images = torch.stack([torch.from_numpy(np.array(Image.open(os.path.join(folder, f)).convert("RGB")))
                          .permute(2, 0, 1).float() for f in files])
    for quality in (50, 90):
        ours, codec = jpeg_tensor(images, quality), jpeg_codec(images, quality)
        gap, distortion = float((ours - codec).abs().mean()), float((images - codec).abs().mean())
        assert gap < 1.0 and gap < distortion / 5, f"quality {quality}: {gap:.2f} levels from the codec"


def test_lower_jpeg_quality_distorts_more(mnist500: Any) -> None:
    x = mnist500.x[:64]
    errors = [float((robust.create_defense("jpeg", quality=q).transform(x) - x).abs().mean()) for q in (10, 50, 95)]
    assert errors[0] > errors[1] > errors[2] > 0


@pytest.mark.parametrize("window", [2, 3, 4, 5])
def test_median_filter_matches_scipy(window: int) -> None:
    from scipy.ndimage import median_filter as scipy_median

    x = torch.rand(3, 2, 9, 11, generator=torch.Generator().manual_seed(window))
    ours = median_filter(x, window).numpy()
    assert np.array_equal(ours, scipy_median(x.numpy(), size=(1, 1, window, window), mode="reflect"))


@pytest.mark.parametrize("bits", [1, 4, 5])
def test_bit_depth_reduction_matches_art(bits: int) -> None:
    from art.defences.preprocessor import FeatureSqueezing as ArtSqueezing

    x = torch.rand(300, 3, 8, 8, generator=torch.Generator().manual_seed(bits))
    theirs, _ = ArtSqueezing(clip_values=(0, 1), bit_depth=bits)(x.numpy())
    ours = robust.create_defense("feature-squeezing", bit_depth=bits).transform(x)
    assert np.array_equal(ours.numpy(), theirs.astype(np.float32))


def test_bit_depth_reduction_keeps_two_levels_at_one_bit(mnist500: Any) -> None:
    out = robust.create_defense("feature-squeezing", bit_depth=1).transform(mnist500.x[:32])
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_bpda_passes_the_gradient_at_the_transformed_point(digits: Any) -> None:
    model = small_digits_model()
    defense = robust.create_defense("spatial-smoothing", window=2)
    defended = defense.wrap(model)
    x = digits.x[:8].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(defended(x).sum(), x)
    z = defense.transform(digits.x[:8]).requires_grad_(True)
    (expected,) = torch.autograd.grad(model(z).sum(), z)
    assert torch.allclose(grad, expected, atol=1e-6)


def test_exact_jpeg_gradients_vanish_and_the_check_fails(zoo_cnn: Any, mnist500: Any) -> None:
    naive = robust.create_defense("jpeg", gradient="exact").wrap(zoo_cnn)
    x = mnist500.x[:16].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(naive(x).sum(), x)
    assert float(grad.abs().max()) == 0
    ctx = Context(naive, mnist500.x[:16], mnist500.y[:16], 0.3, "linf", 0, [], [])
    flag = defense_gradients(ctx)
    assert flag["status"] == "fail" and "no BPDA" in flag["message"]
    adaptive = robust.create_defense("jpeg").wrap(zoo_cnn)
    assert defense_gradients(Context(adaptive, ctx.x, ctx.y, 0.3, "linf", 0, [], []))["status"] == "pass"


def test_defenses_chain_and_unwrap(zoo_cnn: Any) -> None:
    chained = robust.create_defense("spatial-smoothing").wrap(robust.create_defense("jpeg", quality=60).wrap(zoo_cnn))
    assert [d.name for d in chained.defenses] == ["jpeg", "spatial-smoothing"]
    assert undefended(chained) is zoo_cnn
    assert [d.gradient for d in naive_model(chained).defenses] == ["exact", "exact"]


@pytest.mark.cuda
def test_adaptive_evaluation_reveals_what_the_naive_one_hides(zoo_cnn: Any, mnist500: Any) -> None:
    data = (mnist500.x[:200], mnist500.y[:200])
    plain = robust.evaluate(zoo_cnn, data, ["pgd"], eps=0.3).robust_accuracy
    gaps = {}
    for name in PREPROCESSING:
        result = robust.evaluate(robust.create_defense(name).wrap(zoo_cnn), data, ["pgd"], eps=0.3, naive=True)
        assert result.defenses[0]["gradient"] == "bpda" and result.naive is not None
        assert result.robust_accuracy <= result.naive["robust_accuracy"], name
        gaps[name] = (result.robust_accuracy, result.naive["robust_accuracy"])
    for name in ("jpeg", "spatial-smoothing"):
        assert gaps[name][0] <= plain + 0.10, f"{name}: adaptive {gaps[name][0]:.2%} vs undefended {plain:.2%}"
    assert max(gaps[n][1] - gaps[n][0] for n in ("jpeg", "spatial-smoothing")) >= 0.5, gaps


@pytest.mark.cuda
def test_kornia_approximation_is_a_working_gradient_path(zoo_cnn: Any, mnist500: Any) -> None:
    data = (mnist500.x[:100], mnist500.y[:100])
    result = robust.evaluate(robust.create_defense("jpeg", gradient="approx").wrap(zoo_cnn), data, ["pgd"], eps=0.3)
    assert result.defenses[0]["gradient"] == "approx"
    assert result.robust_accuracy <= 0.10


def test_detector_reaches_its_false_positive_rate(zoo_cnn: Any) -> None:
    calibration = robust.load_dataset("mnist", split="train", n=2000)
    held_out = robust.load_dataset("mnist", n=2000)
    detector = robust.create_defense("feature-squeezing", median=2).detector(zoo_cnn)
    detector.calibrate(calibration.x)
    rate = float(detector.flags(held_out.x).float().mean())
    assert abs(rate - 0.05) <= 0.02, f"false-positive rate {rate:.3f} on held-out clean images"


@pytest.mark.cuda
def test_evaluation_reports_the_detection_rate(zoo_cnn: Any, mnist500: Any, tmp_path: Any) -> None:
    detector = robust.create_defense("feature-squeezing", median=2).detector(zoo_cnn)
    detector.calibrate(robust.load_dataset("mnist", split="train", n=1000).x)
    result = robust.evaluate(zoo_cnn, (mnist500.x[:100], mnist500.y[:100]), ["pgd"], eps=0.3, detector=detector)
    found = result.detection
    assert found is not None and found["adversarial_n"] == round((result.clean_accuracy - result.robust_accuracy) * 100)
    assert found["detection_rate"] > found["false_positive_rate"]
    html = robust.write_report(result, tmp_path / "report.html").read_text()
    assert "clean inputs flagged" in html and f"{found['detection_rate']:.2%}" in html


def test_randomized_defense_uses_eot(digits: Any) -> None:
    model = small_digits_model()
    defended = NoisyInput(eot_samples=4).wrap(model)
    before = model.counter.forward
    x = digits.x[:8].clone().requires_grad_(True)
    defended(x).sum().backward()
    assert model.counter.forward - before == 4
    ctx = Context(defended, digits.x[:16], digits.y[:16], 0.1, "linf", 0, [], [])
    assert randomized_forward(ctx)["status"] == "pass" and "EOT" in randomized_forward(ctx)["message"]
    assert defense_gradients(ctx)["status"] == "pass"
    naive = Context(NoisyInput(gradient="exact").wrap(model), ctx.x, ctx.y, 0.1, "linf", 0, [], [])
    assert randomized_forward(naive)["status"] == "fail" and defense_gradients(naive)["status"] == "fail"


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", PREPROCESSING)
def test_harness_invariants_hold_on_defended_models(name: str, check: Any, digits: Any) -> None:
    params = {"bit_depth": 4} if name == "feature-squeezing" else {}
    defended = robust.create_defense(name, **params).wrap(small_digits_model())
    pick = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:24]
    case = Case(defended, digits.x[pick], digits.y[pick], 0.1)
    check(robust.create_attack("pgd", steps=5), case)


def test_defended_result_round_trips_and_renders(zoo_cnn: Any, mnist500: Any, tmp_path: Any) -> None:
    defended = robust.create_defense("jpeg", quality=50).wrap(zoo_cnn)
    result = robust.evaluate(defended, (mnist500.x[:32], mnist500.y[:32]), ["fgsm"], eps=0.3, naive=True)
    loaded = robust.load_result(result.to_json(tmp_path / "result.json"))
    assert loaded.defenses == result.defenses and loaded.naive == result.naive
    html = robust.write_report(loaded, tmp_path / "report.html").read_text()
    assert 'id="defenses"' in html and "BPDA" in html and "naive" in html


def test_eot_mode_averages_over_draws_in_an_attack(digits: Any) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    defended = NoisyInput(eot_samples=3).wrap(robust.Classifier(net, device="cpu"))
    res = robust.create_attack("pgd", steps=3)(defended, digits.x[:8], digits.y[:8], eps=0.1)
    assert res.forward_passes >= 3 * 3
