"""The ``standard`` preset: AutoAttack's cascade (Croce and Hein 2020, arXiv:2003.01690).

APGD-CE, then APGD-T (targeted DLR over the top other classes), FAB-T and Square, each on
the points every earlier one left robust. An evaluation given ``standard`` runs its four
components as separate attacks of its cascade, so the result carries each one's numbers;
called directly (or compared with another framework), it runs the same cascade on the batch.

Shapes: ``x`` (N, C, H, W) in the model's bounds, ``y`` (N,) labels. ``eps`` in input space.

Example:
    >>> result = robust.evaluate(model, data, "standard", eps=0.3)
    >>> [a.name for a in result.attacks]
    ['apgd', 'apgd-t', 'fab-t', 'square']
"""

from __future__ import annotations

import torch

from robust.attack import Attack, AttackResult
from robust.model import Classifier
from robust.params import Param
from robust.registry import create_attack


class Standard(Attack):
    """AutoAttack's standard version as one attack: APGD-CE, APGD-T, FAB-T, Square.

    Args (keyword hyperparameters):
        norm: "linf" or "l2".
        steps: steps of APGD-CE, of APGD-T per target and of FAB-T per target (default 100).
        restarts: runs of APGD-CE, each on the points the earlier ones left robust and the screen
            keeps (default 2; AutoAttack's standard version makes 1). Whether APGD-CE breaks a point
            often depends on its random start: on the zoo's resnet-at, two points that AutoAttack's
            APGD-CE broke and no later component breaks fall in 6 and 2 of 10 seeds, identically
            in both implementations.
        targets: target classes of APGD-T and FAB-T (default 9).
        queries: Square's query budget per point (default 5000).
        screen: APGD-CE's later restarts and the later components attack only the points that a
            20-step APGD-DLR run brings within a DLR loss of ``-screen`` of the boundary (default 0.6;
            None attacks every point, as AutoAttack does). Most of AutoAttack's cost is spent on
            points nothing breaks; on the zoo's adversarially trained MNIST models every point
            AutoAttack broke after APGD-CE scored above -0.51, while the screen left out about
            half of the others.
        prune: Square gives up, after 10%, 20% and 40% of its queries, the points whose best
            point still has a DLR loss below ``-prune``, ``-0.8 prune`` and ``-0.6 prune``
            (default 0.6; None searches every point to the end, as AutoAttack does). On the
            zoo's adversarially trained models every point Square broke after APGD-T and FAB-T
            was above those levels, while they left about two thirds of Square's queries unspent.
        fab_prune: FAB-T gives up, after 30% of a target's steps, the points whose closest
            adversarial point found lies beyond ``fab_prune * eps`` (default 1.3; None: every step).
    """

    name = "standard"
    parameters = (
        Param("norm", str, "linf", "the threat model of every component", choices=("linf", "l2")),
        Param("steps", int, 100, "APGD-CE steps, and APGD-T and FAB-T steps per target", low=1),
        Param("restarts", int, 2, "APGD-CE runs, each on the points the earlier ones left robust (AutoAttack: 1)",
              low=1),
        Param("targets", int, 9, "target classes of APGD-T and FAB-T", low=1),
        Param("queries", int, 5000, "Square's query budget per point", low=1),
        Param("screen", float, 0.6, "APGD-T, FAB-T and Square leave out the points whose best DLR loss over a "
              "20-step APGD-DLR screen stays below -screen; none: every point", low=0, nullable=True),
        Param("prune", float, 0.6, "Square gives up the points whose best DLR loss is still below -prune after 10% "
              "of its queries (-0.8 prune after 20%, -0.6 prune after 40%); none: every point to the end",
              low=0, nullable=True),
        Param("fab_prune", float, 1.3, "FAB-T gives up, after 30% of a target's steps, the points whose closest "
              "adversarial point lies beyond fab_prune * eps; none: every step", low=1, nullable=True),
    )

    def components(self) -> list[Attack]:
        """The cascade's attacks, configured from this preset's parameters."""
        p = self.params
        common = {"norm": p["norm"], "screen": p["screen"]}
        return [create_attack("apgd", norm=p["norm"], steps=p["steps"], restarts=p["restarts"], loss="ce",
                              screen=p["screen"]),
                create_attack("apgd-t", steps=p["steps"], targets=p["targets"], **common),
                create_attack("fab-t", steps=p["steps"], targets=p["targets"], prune=p["fab_prune"], **common),
                create_attack("square", queries=p["queries"], prune=p["prune"], **common)]

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> torch.Tensor:
        self.check(not targeted, "the standard preset is untargeted; run its components for targeted attacks")
        x_adv = x.clone()
        todo = torch.arange(len(x), device=x.device)
        for attack in self.components():
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
            found = attack(model, x[todo], y[todo], eps=eps, seed=seed)
            broken = found.success & _within(found, eps, self.norm)
            x_adv[todo[broken]] = found.x_adv[broken]
            todo = todo[~broken]
            if todo.numel() == 0:
                break
        return x_adv


def _within(found: AttackResult, eps: float | None, norm: str) -> torch.Tensor:
    if eps is None:
        return torch.ones_like(found.success)
    return found.distance(norm) <= eps * (1 + 1e-5) + 1e-7
