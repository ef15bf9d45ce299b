"""Reproduce the model zoo's weights: standard training on the official MNIST training set.

Usage: python scripts/train_zoo.py cnn resnet [--epochs N]
Writes robust/weights/<name>.pt (state dict) and records the 10k test accuracy in
robust/weights/zoo.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from robust.data import load_dataset
from robust.zoo import ZOO

WEIGHTS = Path(__file__).resolve().parents[1] / "robust" / "weights"


def train(name: str, epochs: int, batch_size: int = 128, seed: int = 0) -> float:
    torch.manual_seed(seed)
    spec = ZOO[name]
    net = spec.build()
    train_set = load_dataset("mnist", split="train")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    steps = epochs * (len(train_set) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        start = time.perf_counter()
        order = torch.randperm(len(train_set), generator=gen)
        for i in range(len(train_set) // batch_size):
            idx = order[i * batch_size:(i + 1) * batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(train_set.x[idx]), train_set.y[idx])
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(net)
        print(f"{name} epoch {epoch + 1}/{epochs}: loss {loss.item():.4f} test acc {acc:.4f} ({time.perf_counter() - start:.0f} s)")
    torch.save(net.state_dict(), WEIGHTS / f"{name}.pt")
    return acc


@torch.no_grad()
def accuracy(net: nn.Module) -> float:
    net.eval()
    test = load_dataset("mnist")
    correct = sum(int((net(test.x[i:i + 1000]).argmax(1) == test.y[i:i + 1000]).sum()) for i in range(0, len(test), 1000))
    return correct / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+", choices=sorted(ZOO))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    card_path = WEIGHTS / "zoo.json"
    cards = json.loads(card_path.read_text()) if card_path.exists() else {}
    for name in args.names:
        acc = train(name, args.epochs)
        cards[name] = {"clean_accuracy": round(acc, 4), "epochs": args.epochs, "dataset": "mnist"}
        card_path.write_text(json.dumps(cards, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
