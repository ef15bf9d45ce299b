"""Another framework's implementation of one of our attacks, run through our harness.

The harness runs it in verify mode: its raw output is checked (model re-run, norms
recomputed, bounds and eps ball) without being repaired, so a violation never counts as a
success.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from robust.attack import Attack
from robust.comparison import adapters as fw
from robust.comparison.common import PIP
from robust.errors import RobustError
from robust.model import Classifier
from robust.registry import ATTACKS

PIP_NAMES = {"robust": "robust", **PIP}  # what follows ``pip install`` for each framework


class ExternalAttack(Attack):
    """Another framework's implementation of one of our attacks, configured with our parameters.

    Subclasses are made by :func:`external_attack`; ``run`` calls the framework and returns
    its raw output, which the harness verifies without repairing it.
    """

    verify_only = True

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        runner = fw.make_runner(self.framework, self.name, self.params, norm=self.norm, eps=eps, targeted=targeted)
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
        state = np.random.get_state()
        try:  # the frameworks draw from the global generators: seed them, then put them back
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                torch.manual_seed(seed)
                np.random.seed(seed)
                return runner(model, x, y)
        except fw.FrameworkRefused as exc:
            warnings.warn(f"{exc}; its outputs for this batch of {len(x)} count as failures", stacklevel=2)
            return x
        finally:
            np.random.set_state(state)


def external_attack(framework: str, name: str, **params: Any) -> Attack:
    """``name`` (or a spec such as ``pgd:steps=10``) as implemented by ``framework``.

    ``framework`` is one of :data:`~robust.comparison.adapters.FRAMEWORKS`.
    """
    if framework not in fw.FRAMEWORKS:
        raise RobustError(f"unknown framework {framework!r}; use one of {', '.join(fw.FRAMEWORKS)}")
    ours: Attack = ATTACKS.create(name, **params)
    if framework == "robust":
        return ours
    cls = type(f"{framework.replace('-', '').capitalize()}{type(ours).__name__}", (ExternalAttack,), {
        "name": ours.name, "framework": framework, "parameters": type(ours).parameters, "norms": ours.norms,
        "needs_eps": ours.needs_eps, "takes_eps": ours.takes_eps, "gradient_free": ours.gradient_free,
        "__doc__": f"{type(ours).__name__} as implemented by {framework}, verified by robust.",
    })
    external: Attack = cls(**ours.given)
    return external
