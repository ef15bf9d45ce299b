"""The adversarially trained zoo models: robust where the standard ones are not, as their cards say."""

from __future__ import annotations

from typing import Any

import pytest

import robust
from robust.zoo import ZOO, zoo_cards


def robust_accuracy(name: str, n: int, eps: float = 0.3) -> tuple[float, float]:
    data = robust.load_dataset("mnist", n=n)
    result = robust.evaluate(robust.load_model(name), (data.x, data.y), ["pgd"], eps=eps, seed=0)
    return result.clean_accuracy, result.robust_accuracy


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_is_as_accurate_as_its_card_says(name: str) -> None:
    """Measured by the code, on the first 2000 test images: within 1.5 points of the card's 10k figure."""
    test = robust.load_dataset("mnist", n=2000)
    model = robust.load_model(name)
    clean = float((model.predict(test.x).cpu() == test.y).float().mean())
    card = zoo_cards()[name]
    assert clean >= 0.97 and abs(clean - card["clean_accuracy"]) <= 0.015, (clean, card["clean_accuracy"])
    listed = robust.zoo.list_models()[name]
    assert f"{card['clean_accuracy']:.2%} clean accuracy" in listed, listed


def test_the_robust_zoo_models_are_robust_and_reproducible() -> None:
    """resnet-at under PGD-40 at eps 0.3 on the first 100 test images; the recipes are robust commands."""
    clean, robust_acc = robust_accuracy("resnet-at", 100)
    assert clean >= 0.97 and robust_acc >= 0.85, (clean, robust_acc)
    for name in ("cnn-at", "resnet-at"):
        assert ZOO[name].recipe.startswith("robust train") and f"--model {name.split('-')[0]}" in ZOO[name].recipe


def test_adversarial_training_adds_at_least_50_points(mnist500: Any) -> None:
    _, standard = robust_accuracy("cnn", 200)
    clean, trained = robust_accuracy("cnn-at", 200)
    assert clean >= 0.97
    assert trained - standard >= 0.50, f"cnn {standard:.2%}, cnn-at {trained:.2%} under PGD-40 at eps 0.3"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn-at", "resnet-at"])
def test_zoo_card_figures_reproduce(name: str) -> None:
    """The figures in weights/zoo.json: at least 97% clean on the 10k test set, 88% under PGD-40 on the first 1000."""
    test = robust.load_dataset("mnist")
    model = robust.load_model(name)
    clean = float((model.predict(test.x).cpu() == test.y).float().mean())
    _, robust_acc = robust_accuracy(name, 1000)
    card = zoo_cards()[name]
    assert clean >= 0.97 and robust_acc >= 0.88, (clean, robust_acc)
    assert abs(clean - card["clean_accuracy"]) < 1e-3 and abs(robust_acc - card["robust_accuracy"]) < 1e-3
