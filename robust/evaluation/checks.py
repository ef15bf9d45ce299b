"""Sanity checks that flag an unreliable evaluation.

After Carlini et al. 2019 ("On Evaluating Adversarial Robustness", arXiv:1902.06705),
AutoAttack's flags and Pintor et al. 2022 ("Indicators of Attack Failure"). Checks that need
extra attack runs use cheap variants on a subset of at most ``SUBSET`` correctly classified
points, and say so. Each check returns ``{"id", "status", "message", "link"}`` with status
``pass``, ``warn`` or ``fail``; ``docs/checks.md`` explains them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from robust.attack import Attack
from robust.defense import defense_chain
from robust.gradient import Descent, GradientAttack, descend
from robust.losses import margin
from robust.model import Classifier
from robust.ops import largest
from robust.params import NORMS
from robust.result import Check, CheckStatus

SUBSET = 64


@dataclass
class Context:
    """What the checks look at: the model, a subset of correctly classified points, the threat model."""

    model: Classifier
    x: torch.Tensor
    y: torch.Tensor
    eps: float
    norm: str
    seed: int
    attacks: list[Attack]
    broken_by: list[str | None]
    traced: dict[str, Descent] = field(default_factory=dict)


def _result(check_id: str, status: CheckStatus, message: str) -> Check:
    return {"id": check_id, "status": status, "message": message, "link": f"docs/checks.md#{check_id}"}


def _robust_acc(ctx: Context, attack: Attack, eps: float) -> float:
    res = attack(ctx.model, ctx.x, ctx.y, eps=eps, seed=ctx.seed)
    return float((~res.success).float().mean())


def _pgd(ctx: Context, **params: Any) -> GradientAttack:
    """PGD with the gradient base's defaults (the ``pgd`` plugin is that base as it is)."""
    return GradientAttack(norm=ctx.norm, **params)


def iterative_beats_single_step(ctx: Context) -> Check:
    single = _pgd(ctx, steps=1, step_size=ctx.eps or None, random_start=False)  # FGSM (at eps 0: a zero step)
    fgsm = _robust_acc(ctx, single, ctx.eps)
    pgd = _robust_acc(ctx, _pgd(ctx, steps=20), ctx.eps)
    status: CheckStatus = "fail" if pgd > fgsm + 0.02 else "pass"
    return _result("iterative-vs-single-step", status,
                   f"on {len(ctx.x)} points: FGSM leaves {fgsm:.1%}, PGD-20 leaves {pgd:.1%} robust")


def more_steps_and_restarts(ctx: Context) -> Check:
    base = _robust_acc(ctx, _pgd(ctx, steps=20), ctx.eps)
    strong = _robust_acc(ctx, _pgd(ctx, steps=40, restarts=2), ctx.eps)
    drop = base - strong
    status: CheckStatus = "warn" if drop > 0.05 else "pass"
    return _result("more-steps", status, f"on {len(ctx.x)} points: PGD-20 {base:.1%}, PGD-40 with 2 restarts "
                   f"{strong:.1%} robust (a drop of {drop:.1%}; more than 5 points means the attack had not converged)")


def eps_sweep(ctx: Context) -> Check:
    lo, hi = ctx.model.bounds
    large = largest(ctx.norm, hi - lo, ctx.x[0].numel())
    levels = [ctx.eps / 2, ctx.eps, min(2 * ctx.eps, large), large]
    accs = [_robust_acc(ctx, _pgd(ctx, steps=20), e) for e in levels]
    rising = any(b > a + 0.02 for a, b in zip(accs, accs[1:]))
    chance = 1.0 / max(int(ctx.model.num_classes or 2), 2)
    text = ", ".join(f"eps {e:.3g}: {a:.1%}" for e, a in zip(levels, accs))
    status: CheckStatus = "fail" if rising or accs[-1] > chance else "pass"
    return _result("eps-sweep", status, f"PGD-20 on {len(ctx.x)} points: {text}; robust accuracy must not rise "
                   f"with eps and must fall to chance ({chance:.0%}) or below at the largest")


def gradients(ctx: Context) -> Check:
    x = ctx.x.clone().requires_grad_(True)
    with ctx.model.evaluating():
        loss = F.cross_entropy(ctx.model(x), ctx.y, reduction="sum")
    grad, = torch.autograd.grad(loss, x)
    flat = grad.flatten(1)
    bad = ~torch.isfinite(flat).all(dim=1)
    zero = (flat.abs().amax(dim=1) == 0) & ~bad
    attack, run = trace_of(ctx)
    assert run.flat is not None
    along = float((run.flat > (attack.schedule(ctx.eps).steps + 1) / 2).float().mean())
    share_bad, share_zero = float(bad.float().mean()), max(float(zero.float().mean()), along)
    status: CheckStatus = "fail" if share_bad > 0 or share_zero > 0.5 else "warn" if share_zero > 0.1 else "pass"
    return _result("gradients", status, f"{float(zero.float().mean()):.1%} of {len(x)} points have an all-zero "
                   f"cross-entropy gradient, {share_bad:.1%} a NaN or infinite one; along {_label(attack, ctx)}'s "
                   f"steps (margin loss), {along:.1%} had an all-zero gradient at most iterates")


@torch.no_grad()
def randomized_forward(ctx: Context) -> Check:
    with ctx.model.evaluating():
        first, second = ctx.model(ctx.x), ctx.model(ctx.x)
    gap = float((first - second).abs().max())
    message = f"two identical forward passes differ by up to {gap:.3g} in the logits"
    if gap <= 1e-4 * max(1.0, float(first.abs().max())):
        return _result("randomized-forward", "pass", message)
    eot = [d for d in defense_chain(ctx.model) if d.randomized and d.gradient == "eot"]
    if eot:
        return _result("randomized-forward", "pass", f"{message}; the randomized defense {eot[0].name} is attacked "
                       f"with EOT over {eot[0].eot_samples} draws")
    return _result("randomized-forward", "fail", message + ": attacks need EOT (average gradients over draws)")


@torch.no_grad()
def probabilities(ctx: Context) -> Check:
    with ctx.model.evaluating():
        out = ctx.model(ctx.x)
    looks = bool((out >= 0).all()) and bool(torch.allclose(out.sum(1), torch.ones(len(out), device=out.device), atol=1e-3))
    return _result("probabilities", "fail" if looks else "pass",
                   "outputs are non-negative and sum to 1: the model returns probabilities, not logits" if looks
                   else "outputs look like logits")


def decision_beats_gradient(ctx: Context) -> Check:
    blind = {a.name for a in ctx.attacks if a.gradient_free}
    if not blind:
        return _result("decision-vs-gradient", "pass", "no decision- or score-based attack in this evaluation: "
                       "not applicable")
    only = sum(1 for b in ctx.broken_by if b in blind)
    status: CheckStatus = "warn" if only > 0 else "pass"
    return _result("decision-vs-gradient", status, f"the attacks without gradients ({', '.join(sorted(blind))}) "
                   f"broke {only} point(s) that every gradient attack before them missed")


def loss_trace(ctx: Context, attack: GradientAttack) -> Descent:
    """``attack``'s step rule (its own stepper: APGD's checkpoints, PGD's fixed step) from its own
    seeded start, without early exit, tracing the best margin loss per step and point (steps + 1, N)."""
    plan = attack.schedule(ctx.eps)
    gen = torch.Generator(device=ctx.x.device).manual_seed(ctx.seed)
    start = attack.start(ctx.x, ctx.eps, ctx.model.bounds, plan, gen)
    stepper = attack.stepper(ctx.x, ctx.eps, plan, ctx.model.bounds)
    with ctx.model.evaluating():
        found = descend(ctx.model, ctx.y, start, stepper, steps=plan.steps, loss=margin, early_exit=False, trace=True)
    assert found.trace is not None
    return found


def trace_of(ctx: Context) -> tuple[GradientAttack, Descent]:
    """The evaluation's first iterative gradient attack (PGD-20 when it has none) and its traced run, made once."""
    attack = next((a for a in ctx.attacks if isinstance(a, GradientAttack) and a.framework == "robust"
                   and a.schedule(ctx.eps).steps > 1), None) or _pgd(ctx, steps=20)
    if "run" not in ctx.traced:
        ctx.traced["run"] = loss_trace(ctx, attack)
    return attack, ctx.traced["run"]


def _label(attack: GradientAttack, ctx: Context) -> str:
    return f"{attack.name.upper()}-{attack.schedule(ctx.eps).steps}"


def loss_still_improving(ctx: Context) -> Check:
    attack, run = trace_of(ctx)
    plan = attack.schedule(ctx.eps)
    steps, size = plan.steps, plan.step_size
    assert run.trace is not None
    trace = run.trace
    failing = trace[-1] < 0
    if steps < 10 or not bool(failing.any()):
        return _result("loss-still-improving", "pass", f"{_label(attack, ctx)} on {len(ctx.x)} points: "
                       + ("too few steps to judge" if steps < 10 else "no point survived, so none still needed steps"))
    tail = trace[-1][failing] - trace[int(0.9 * steps)][failing]
    total = (trace[-1][failing] - trace[0][failing]).clamp_min(1e-12)
    share = float(tail.sum() / total.sum())
    status: CheckStatus = "warn" if share > 0.05 else "pass"
    return _result("loss-still-improving", status, f"{_label(attack, ctx)} (first step {size:.3g}) on the {int(failing.sum())} of "
                   f"{len(ctx.x)} points it did not break: the last 10% of the steps made {share:.1%} of the margin "
                   "loss's progress (over 5%, half the pace of a steady climb, means more steps would find more)")


def defense_gradients(ctx: Context) -> Check:
    chain = defense_chain(ctx.model)
    if not chain:
        return _result("defense-gradients", "pass", "no preprocessing defense in this evaluation: not applicable")
    naive = [d.name for d in chain if not d.differentiable and d.gradient == "exact"]
    no_eot = [d.name for d in chain if d.randomized and d.gradient != "eot"]
    modes = ", ".join(f"{d.name}: {d.gradient}" for d in chain)
    if naive or no_eot:
        what = "; ".join(filter(None, [
            f"non-differentiable {', '.join(naive)} attacked through its true gradients (no BPDA)" if naive else "",
            f"randomized {', '.join(no_eot)} attacked without EOT" if no_eot else ""]))
        return _result("defense-gradients", "fail", f"{what} ({modes}): this robust accuracy is an upper bound "
                       "that an adaptive attacker can lower")
    return _result("defense-gradients", "pass", f"every defense is attacked adaptively ({modes})")


CHECKS: list[Callable[[Context], Check]] = [
    iterative_beats_single_step, more_steps_and_restarts, eps_sweep, gradients, randomized_forward,
    probabilities, decision_beats_gradient, loss_still_improving, defense_gradients,
]


def run_checks(model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str, seed: int,
               attacks: list[Attack], broken_by: list[str | None]) -> list[Check]:
    """Run every check on the first ``SUBSET`` points of ``x`` (correctly classified ones)."""
    device = model.device
    lo, hi = model.bounds
    span = largest(norm, hi - lo, max(1, x[0].numel())) if len(x) else 1.0
    ctx = Context(model, x[:SUBSET].to(device), y[:SUBSET].to(device), min(eps, span), norm, seed, attacks, broken_by)
    if len(ctx.x) == 0:
        return [_result("no-points", "warn", "no correctly classified points: nothing to check")]
    if norm not in NORMS:
        return [_result("norm", "warn", f"the checks compare PGD runs, and PGD has no {norm} threat model: "
                        "none was run; judge this evaluation by its attacks' convergence alone")]
    return [check(ctx) for check in CHECKS]
