"""Projections onto a hyperplane inside a box, in L2 and Linf, for FAB (arXiv:1907.02044).

Every row solves ``min ||d||  s.t.  w . d = c,  lo <= t + d <= hi`` for a point ``t`` inside
the box: the smallest step (in the norm) from ``t`` onto the hyperplane ``{z : w . (z - t) = c}``
intersected with the box ``[lo, hi]^D``. FAB linearizes a logit difference ``f`` at ``x``, so
its hyperplane is ``{z : f(x) + w . (z - x) = 0}`` with ``w`` the gradient, and the change a
point ``t`` needs is ``c = -f(x) - w . (t - x)``; passing ``c`` rather than an offset ``b``
avoids the cancellation in ``b - w . t``.

Both norms reduce to one monotone piecewise-linear equation in a scalar. Write ``s`` for the
sign of ``c`` and ``m_i >= 0`` for the room coordinate ``i`` has in the helpful direction
``s * sign(w_i)``. Then

* Linf: ``d_i = s sign(w_i) min(r, m_i)`` with ``sum_i |w_i| min(r, m_i) = |c|``;
* L2 (the KKT conditions): ``d_i = s sign(w_i) min(l |w_i|, m_i)`` with
  ``sum_i w_i^2 min(l, m_i / |w_i|) = |c|``.

Both are ``sum_i a_i min(x, k_i) = |c|`` with slopes ``a_i >= 0`` and breakpoints ``k_i``.
The solver is sort-based and exact to float precision: it sorts the breakpoints, evaluates
the function at all of them with cumulative sums, counts the breakpoints below the target to
find the linear piece, and solves on that piece; no iteration. It works in float64 and
rounds the result to the input's dtype once, since near the last breakpoint the root is a
difference of sums of D terms divided by a small slope. A row whose hyperplane
cannot be reached inside the box (``|c|`` at least the value at the last breakpoint) gets the
box corner that moves ``w . z`` furthest towards it, as in the reference implementation
(pyautoattack's ``fab_projections``, which sorts too but bisects over the sorted breakpoints).

Shapes: ``t`` and ``w`` are (N, D), ``c`` is (N,); the result ``d`` is (N, D), in input space.

Example:
    >>> d = project_linf(t, w, c, bounds=(0.0, 1.0))
    >>> torch.allclose((w * d).sum(1), c, atol=1e-5)
    True
"""

from __future__ import annotations

import torch


def _room(t: torch.Tensor, w: torch.Tensor, c: torch.Tensor,
          bounds: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The direction ``s * sign(w)`` (N, D), the room ``m`` (N, D) there and the target ``|c|`` (N,)."""
    direction = torch.sign(c)[:, None] * torch.sign(w)
    room = torch.where(direction > 0, bounds[1] - t, t - bounds[0]).clamp_min(0)
    return direction, room, c.abs()


def _solve(slope: torch.Tensor, knee: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The root ``x >= 0`` of ``sum_i slope_i * min(x, knee_i) = target`` per row, and whether the
    row is infeasible (``target`` at or above the function's maximum, reached at the last knee).

    Knees may be infinite where the slope is 0 (such terms contribute nothing).
    """
    knee, order = knee.sort(dim=1)
    slope = slope.gather(1, order)
    zero = torch.zeros_like(slope[:, :1])
    saturated = torch.where(slope > 0, slope * knee, torch.zeros_like(slope))  # a_i k_i, 0 for the flat terms
    below = saturated.cumsum(dim=1)                                          # sum of a_i k_i over knees <= k_(j)
    above = torch.cat((slope.flip(1).cumsum(dim=1).flip(1)[:, 1:], zero), dim=1)  # sum of a_i over knees > k_(j)
    at_knee = below + torch.where(above > 0, knee * above, torch.zeros_like(above))  # f(k_(j)), nondecreasing in j
    infeasible = target >= below[:, -1]
    piece = (at_knee < target[:, None]).sum(dim=1).clamp(max=knee.shape[1] - 1)[:, None]  # knees below the root
    done = torch.cat((zero, below), dim=1).gather(1, piece).squeeze(1)
    rest = torch.cat((slope.sum(dim=1, keepdim=True), above), dim=1).gather(1, piece).squeeze(1)
    root = ((target - done) / rest.clamp_min(torch.finfo(rest.dtype).tiny)).clamp_min(0)
    low = torch.cat((zero, knee), dim=1).gather(1, piece).squeeze(1)
    high = knee.gather(1, piece).squeeze(1)
    return torch.minimum(torch.maximum(root, low), high), infeasible  # on the piece, against rounding


def project_linf(t: torch.Tensor, w: torch.Tensor, c: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """The Linf-smallest step ``d`` (N, D) from ``t`` (N, D) with ``w . d = c`` and ``t + d`` within ``bounds``.

    The optimum is not unique in Linf; this one moves every coordinate with ``w_i != 0`` by the
    same amount (or up to its bound), as the reference implementation does.
    """
    direction, room, target = _room(t.double(), w.double(), c.double(), bounds)
    radius, infeasible = _solve(w.abs().double(), room, target)
    step = torch.where(infeasible[:, None], room, torch.minimum(radius[:, None], room))
    return (direction * step).to(t.dtype)


def project_l2(t: torch.Tensor, w: torch.Tensor, c: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """The L2-smallest step ``d`` (N, D) from ``t`` (N, D) with ``w . d = c`` and ``t + d`` within ``bounds``:
    ``d = clip(l * w, lo - t, hi - t)`` for the multiplier ``l`` that reaches the hyperplane."""
    direction, room, target = _room(t.double(), w.double(), c.double(), bounds)
    size = w.abs().double()
    knee = torch.where(size > 0, room / size.clamp_min(torch.finfo(size.dtype).tiny), torch.full_like(size, torch.inf))
    scale, infeasible = _solve(size.square(), knee, target)
    step = torch.where(infeasible[:, None], room, torch.minimum(scale[:, None] * size, room))
    return (direction * step).to(t.dtype)


def project(t: torch.Tensor, w: torch.Tensor, c: torch.Tensor, bounds: tuple[float, float], norm: str) -> torch.Tensor:
    """:func:`project_linf` or :func:`project_l2` by ``norm`` ("linf" or "l2")."""
    return project_linf(t, w, c, bounds) if norm == "linf" else project_l2(t, w, c, bounds)
