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


def test_every_zoo_model_has_weights_and_a_card() -> None:
    cards = zoo_cards()
    for name in ZOO:
        assert cards[name]["clean_accuracy"] >= 0.97, name
        robust.load_model(name)
    for name in ("cnn-at", "resnet-at"):
        assert cards[name]["robust_accuracy"] >= 0.88 and ZOO[name].recipe.startswith("robust train"), name


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
