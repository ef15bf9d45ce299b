"""Boundary attack, L2 (Brendel, Rauber and Bethge 2018, arXiv:1712.04248).

A decision-based minimization attack: it sees only the model's top-1 decision. It starts
from a point that is already adversarial and walks along the decision boundary towards
the clean input with random orthogonal steps and steps towards the input.
"""

from __future__ import annotations

import math

import torch

from robust.attack import Attack, is_adversarial, per_sample
from robust.model import Classifier
from robust.params import TENSOR, Param

SPHERICAL_WINDOW = 10    # spherical-step outcomes kept per sample (one probe every PROBE_EVERY rounds)
PROBE_EVERY = 4          # rounds between probes of the spherical candidate alone (costs one query)
STEP_WINDOW = 20         # full-step outcomes kept per sample (one per round, free)
SPHERICAL_RATES = (0.2, 0.5)   # spherical success rate below/above which both steps shrink/grow
STEP_RATES = (0.1, 0.25)       # full-step success rate below/above which the source step shrinks/grows
CONVERGED = 1e-7         # a sample whose source step falls below this stops


class SuccessWindow:
    """Per-sample running window of the last ``size`` outcomes (NaN marks an empty slot)."""

    def __init__(self, size: int, n: int, device: torch.device) -> None:
        self.buf = torch.full((size, n), math.nan, device=device)
        self.pos = torch.zeros(n, dtype=torch.long, device=device)

    def append(self, idx: torch.Tensor, outcome: torch.Tensor) -> None:
        self.buf[self.pos[idx], idx] = outcome.float()
        self.pos[idx] = (self.pos[idx] + 1) % self.buf.shape[0]

    def verdict(self, low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples with a full window whose success rate is above ``high`` / below ``low``; those are reset."""
        full = ~self.buf.isnan().any(dim=0)
        rate = self.buf.nan_to_num(0.0).mean(dim=0)
        up, down = full & (rate > high), full & (rate < low)
        self.buf[:, up | down] = math.nan
        return up, down


class BoundaryAttack(Attack):
    """Boundary attack: a random walk along the decision boundary that shrinks the L2 distance.

    Brendel, Rauber and Bethge, "Decision-Based Adversarial Attacks: Reliable Attacks Against
    Black-Box Machine Learning Models", ICLR 2018 (arXiv:1712.04248). Norm: L2 only; distances
    and bounds are in input space. Only ``model(x).argmax(1)`` is used, never gradients.

    Shapes: ``x`` (N, C, H, W) inside the model's bounds, ``y`` (N,) true labels (targets when
    ``targeted``). Returns ``x_adv`` (N, C, H, W) and per-sample model queries (N,).

    Initialization: per sample, uniform noise in the bounds is drawn until it is adversarial
    (or ``starting_points`` are used), then the blend ``(1 - a) x + a noise`` is searched for
    the smallest adversarial ``a`` (a linear search, then bisection). Each later round draws a
    Gaussian step orthogonal to ``x - x_adv`` of relative size ``spherical_step``, projects it
    back onto the sphere around ``x``, moves a fraction ``source_step`` of the distance towards
    ``x`` and keeps the candidate when it is adversarial and closer. Step sizes adapt per sample
    from running success rates of the spherical and the full steps (multiplied or divided by
    ``step_adaptation``); the spherical candidate alone is probed every few rounds for that.

    Args (keyword hyperparameters):
        norm: "l2" only.
        max_queries: model queries per sample, initialization included (default 5000).
        spherical_step: initial orthogonal step, relative to the current distance (default 0.01).
        source_step: initial step towards ``x``, relative to the current distance (default 0.01).
        step_adaptation: factor by which step sizes grow or shrink (default 1.5).
        init_draws: uniform-noise draws per sample to find an adversarial one (default 100).
        init_steps: blend factors tried by the linear search (default 20).
        init_bisections: bisection steps after the linear search (default 10).
        starting_points: optional adversarial inputs (N, C, H, W) to start from (of the target
            class when ``targeted``); samples whose point is not adversarial fall back to noise.

    A sample that is already misclassified costs one query and comes back unchanged; so does
    one for which no adversarial start is found. With ``eps`` a sample stops once within eps.

    Example:
        >>> boundary = robust.create_attack("boundary", max_queries=2000)
        >>> result = boundary(model, x, y, seed=0)
        >>> result.l2.median(), result.queries.max()
    """

    name = "boundary"
    needs_eps = False
    gradient_free = True
    parameters = (
        Param("norm", str, "l2", "l2 only", choices=("l2",)),
        Param("max_queries", int, 5000, "model queries per sample, initialization included", low=1),
        Param("spherical_step", float, 0.01, "initial orthogonal step, relative to the current distance",
              low=0, open_low=True),
        Param("source_step", float, 0.01, "initial step towards x, relative to the current distance",
              low=0, open_low=True),
        Param("step_adaptation", float, 1.5, "factor by which step sizes grow or shrink", low=1, open_low=True),
        Param("init_draws", int, 100, "uniform-noise draws per sample to find an adversarial start", low=1),
        Param("init_steps", int, 20, "blend factors tried by the linear search", low=1),
        Param("init_bisections", int, 10, "bisection steps after the linear search", low=0),
        Param("starting_points", TENSOR, None, "adversarial inputs (N, C, H, W) to start from", nullable=True),
    )

    def run(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, *, eps: float | None, targeted: bool,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        queries = torch.zeros(len(x), dtype=torch.long, device=x.device)
        start = self.initialize(model, x, y, targeted, generator, queries)
        return self.walk(model, x, y, start, targeted, eps, generator, queries), queries

    @torch.no_grad()
    def query(self, model: Classifier, xs: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
        """One batched model call: which rows of ``xs`` are adversarial."""
        return is_adversarial(model(xs), y, targeted)

    def with_budget(self, queries: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Indices of the samples in ``mask`` that have budget left."""
        return (mask & (queries < self.params["max_queries"])).nonzero().squeeze(1)

    def initialize(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, targeted: bool,
                   generator: torch.Generator, queries: torch.Tensor) -> torch.Tensor:
        """An adversarial start per sample (``x`` itself where none is found)."""
        p, lo, hi = self.params, *model.bounds
        queries += 1
        done = self.query(model, x, y, targeted)  # already adversarial: nothing to do
        far, found = x.clone(), torch.zeros_like(done)
        given = p["starting_points"]
        if given is not None:
            self.check(tuple(given.shape) == tuple(x.shape),
                       f"starting_points must have the shape of x {tuple(x.shape)}, got {tuple(given.shape)}")
            idx = self.with_budget(queries, ~done)
            if idx.numel():
                points = given.detach().to(x.device, x.dtype)[idx].clamp(lo, hi)
                queries[idx] += 1
                ok = self.query(model, points, y[idx], targeted)
                far[idx[ok]], found[idx[ok]] = points[ok], True
        for _ in range(p["init_draws"]):
            idx = self.with_budget(queries, ~done & ~found)
            if idx.numel() == 0:
                break
            noise = lo + (hi - lo) * torch.rand(x[idx].shape, generator=generator, device=x.device, dtype=x.dtype)
            queries[idx] += 1
            ok = self.query(model, noise, y[idx], targeted)
            far[idx[ok]], found[idx[ok]] = noise[ok], True
        blend = self.blend_search(model, x, y, far, found, targeted, queries)
        return torch.where(per_sample(found, x), x + per_sample(blend, x) * (far - x), x)

    def blend_search(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, far: torch.Tensor,
                     found: torch.Tensor, targeted: bool, queries: torch.Tensor) -> torch.Tensor:
        """Per sample, the smallest adversarial blend factor towards ``far`` (1 where it is untried)."""
        steps = self.params["init_steps"]
        low, high = torch.zeros(len(x), device=x.device), torch.ones(len(x), device=x.device)
        searching = found.clone()
        for j in range(1, steps):
            idx = self.with_budget(queries, searching)
            if idx.numel() == 0:
                break
            ok = self._try_blend(model, x, y, far, idx, torch.full((len(idx),), j / steps, device=x.device),
                                 targeted, queries)
            high[idx[ok]], searching[idx[ok]], low[idx[~ok]] = j / steps, False, j / steps
        for _ in range(self.params["init_bisections"]):
            idx = self.with_budget(queries, found)
            if idx.numel() == 0:
                break
            mid = (low[idx] + high[idx]) / 2
            ok = self._try_blend(model, x, y, far, idx, mid, targeted, queries)
            high[idx[ok]], low[idx[~ok]] = mid[ok], mid[~ok]
        return high

    def _try_blend(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, far: torch.Tensor, idx: torch.Tensor,
                   alpha: torch.Tensor, targeted: bool, queries: torch.Tensor) -> torch.Tensor:
        queries[idx] += 1
        xs = x[idx] + per_sample(alpha, x).to(x.dtype) * (far[idx] - x[idx])
        return self.query(model, xs, y[idx], targeted)

    def walk(self, model: Classifier, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor, targeted: bool,
             eps: float | None, generator: torch.Generator, queries: torch.Tensor) -> torch.Tensor:
        """The boundary walk from ``start``, batched, until every sample is done or out of budget."""
        p, n, shape = self.params, len(x), x.shape[1:]
        budget, factor = p["max_queries"], float(p["step_adaptation"])
        x0, best = x.flatten(1), start.flatten(1).clone()
        dist = (best - x0).norm(dim=1)
        spherical = torch.full((n,), float(p["spherical_step"]), device=x.device, dtype=x.dtype)
        source = torch.full_like(spherical, float(p["source_step"]))
        sph_window = SuccessWindow(SPHERICAL_WINDOW, n, x.device)
        step_window = SuccessWindow(STEP_WINDOW, n, x.device)
        for round_ in range(budget):
            idx = self.with_budget(queries, (dist > (eps or 0.0)) & (source >= CONVERGED))
            if idx.numel() == 0:
                break
            cand, sph = proposals(x0[idx], best[idx], dist[idx], spherical[idx], source[idx], model.bounds, generator)
            probe = (queries[idx] + 2 <= budget) & (round_ % PROBE_EVERY == 0)
            adv = self.query(model, torch.cat([cand, sph[probe]]).view(-1, *shape),
                             torch.cat([y[idx], y[idx[probe]]]), targeted)
            queries[idx] += 1
            queries[idx[probe]] += 1
            new = (cand - x0[idx]).norm(dim=1)
            take = adv[:len(idx)] & (new < dist[idx])
            best[idx[take]], dist[idx[take]] = cand[take], new[take]
            step_window.append(idx, adv[:len(idx)])
            sph_window.append(idx[probe], adv[len(idx):])
            spherical, source = adapt(spherical, source, sph_window, step_window, factor)
        return best.view_as(x)


def adapt(spherical: torch.Tensor, source: torch.Tensor, sph_window: SuccessWindow, step_window: SuccessWindow,
          factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow or shrink the per-sample step sizes from the success windows (Foolbox's rule)."""
    up, down = sph_window.verdict(*SPHERICAL_RATES)
    scale = torch.where(up, factor, torch.where(down, 1 / factor, 1.0))
    spherical, source = spherical * scale, source * scale
    up, down = step_window.verdict(*STEP_RATES)
    return spherical, source * torch.where(up, factor, torch.where(down, 1 / factor, 1.0))


def proposals(x0: torch.Tensor, best: torch.Tensor, dist: torch.Tensor, spherical: torch.Tensor,
              source: torch.Tensor, bounds: tuple[float, float], generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Full and spherical candidates (n, D) for flat inputs ``x0`` and current points ``best``."""
    towards = x0 - best
    unit = towards / dist[:, None]
    eta = torch.randn(best.shape, generator=generator, device=best.device, dtype=best.dtype)
    eta = eta - (eta * unit).sum(dim=1, keepdim=True) * unit
    eta = eta * (spherical * dist / eta.norm(dim=1).clamp_min(1e-12))[:, None]
    # Pythagoras: x0 - towards + eta lies at sqrt(1 + spherical^2) * dist from x0; rescale onto the sphere.
    sph = (x0 + (eta - towards) / (1 + spherical.square()).sqrt()[:, None]).clamp(*bounds)
    back = x0 - sph
    back_norm = back.norm(dim=1).clamp_min(1e-12)
    length = (source * dist + back_norm - dist).clamp_min(0) / back_norm  # corrects for clipping off the sphere
    return (sph + length[:, None] * back).clamp(*bounds), sph

