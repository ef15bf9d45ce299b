"""Measure a zoo model and record its card in robust/weights/zoo.json.

Usage: python scripts/zoo_card.py cnn-at resnet-at
Clean accuracy on the 10,000 MNIST test images; for adversarially trained models (an entry
with a recipe) also PGD-40 robust accuracy at Linf eps 0.3 on the first 1000 (seed 0).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import robust
from robust.zoo import ZOO

CARDS = Path(__file__).resolve().parents[1] / "robust" / "weights" / "zoo.json"


def card(name: str) -> dict[str, object]:
    model = robust.load_model(name)
    test = robust.load_dataset("mnist")
    entry: dict[str, object] = {"dataset": "mnist",
                                "clean_accuracy": round(float((model.predict(test.x).cpu() == test.y).float().mean()), 4)}
    if ZOO[name].recipe:
        first = robust.load_dataset("mnist", n=1000)
        result = robust.evaluate(model, (first.x, first.y), ["pgd"], eps=0.3, seed=0)
        entry.update(robust_accuracy=round(result.robust_accuracy, 4), robust_eval="PGD-40, Linf eps 0.3, first 1000",
                     recipe=ZOO[name].recipe)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+", choices=sorted(ZOO))
    args = parser.parse_args()
    cards = json.loads(CARDS.read_text())
    for name in args.names:
        cards[name] = {**cards.get(name, {}), **card(name)}
        print(name, cards[name])
        CARDS.write_text(json.dumps(cards, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
