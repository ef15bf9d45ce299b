"""One attack specification, run by robust, ART, Foolbox or AutoAttack: parameter tables and runners.

Our parameter names and values (an attack's ``defaults``) become the other framework's arguments;
:func:`mapping` says how faithful each translation is (data for reports). A runner returns the
framework's raw output, never clipped, projected or judged, so that the one verification step
elsewhere sees every violation. ART, Foolbox and pyautoattack (AutoAttack's runners live in
:mod:`robust.comparison.autoattack`) are imported lazily: this module works without them.

Example:
    >>> run = make_runner("foolbox", "pgd", {"steps": 10}, norm="linf", eps=0.3)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from importlib import import_module
from typing import Any

import torch
from torch import nn

from robust.comparison import autoattack
from robust.comparison.common import MODULES, FrameworkRefused, Runner, eval_mode, refusals, require
from robust.comparison.tables import CLASSES, EXACT, NONE, ROWS, ParamMapping
from robust.errors import RobustError, suggest
from robust.model import Classifier
from robust.registry import ATTACKS as _REGISTRY
from robust.registry import create_attack, declarations, list_attacks, list_defenses

FRAMEWORKS = ("robust", "art", "foolbox", "autoattack")
ATTACKS = ("fgsm", "pgd", "deepfool", "cw", "boundary", "apgd", "apgd-t", "fab", "fab-t", "square", "standard")
FIXED_EPS = ("fgsm", "pgd", "apgd", "apgd-t", "square", "standard")  # the others minimize the distance


def _check(framework: str, attack: str, norm: str) -> None:
    if framework not in FRAMEWORKS:
        raise RobustError(f"unknown framework {framework!r}{suggest(framework, FRAMEWORKS)}; "
                          f"known: {', '.join(FRAMEWORKS)}")
    ours = _REGISTRY.get(attack)  # an unknown (or broken) attack of ours: its own message, with close names
    offered = ours.norms if framework == "robust" else CLASSES[framework].get(attack)
    if offered is None:
        raise RobustError(f"{framework} does not offer attack {attack!r}; it offers {', '.join(CLASSES[framework])}")
    if norm not in offered:
        raise RobustError(f"{framework} does not offer {attack!r} with norm {norm!r}; it offers {', '.join(offered)}")


def version(framework: str) -> str | None:
    """Installed version of ``"art"``, ``"foolbox"`` or ``"autoattack"`` (``"robust"``: ours); None if not importable.

    Raises:
        RobustError: an unknown framework name.
    """
    if framework == "robust":
        return str(import_module("robust").__version__)
    if framework not in MODULES:
        raise RobustError(f"unknown framework {framework!r}{suggest(framework, FRAMEWORKS)}")
    try:
        module = import_module(MODULES[framework])
    except ImportError:
        return None
    return str(getattr(module, "__version__", "unknown"))


def mapping(framework: str, attack: str, norm: str) -> list[ParamMapping]:
    """The parameter table of ``attack`` with ``norm`` in ``framework`` (data: needs no install).

    Raises:
        RobustError: the framework does not offer the attack or the norm, named in the message.
    """
    _check(framework, attack, norm)
    declared = {p.name: p for p in declarations(_REGISTRY.get(attack)) if p.name != "norm"}
    if framework == "robust":
        return [ParamMapping("norm", "norm", EXACT, norm), ParamMapping("eps", "eps", EXACT),
                *(ParamMapping(k, k, EXACT, p.describe()) for k, p in declared.items()),
                ParamMapping("targeted", "targeted", EXACT)]
    rows = [ParamMapping(*row) for row in ROWS[framework][attack]]
    stale = sorted({r.ours for r in rows} - {*declared, "eps", "targeted"})
    if stale:  # the table names a parameter the attack no longer declares
        raise RuntimeError(f"the {framework} table of {attack!r} maps undeclared parameters {stale}")
    cls = CLASSES[framework][attack][norm]
    theirs = f"{cls}(norm={'np.inf' if norm == 'linf' else 2})" if cls.startswith(("Fast", "Projected")) else cls
    if framework == "autoattack":
        theirs = f"{cls}(norm={autoattack.NORMS[norm]!r})"
    return [ParamMapping("norm", theirs, EXACT, norm), *rows]


def supports(framework: str, attack: str, norm: str) -> bool:
    """Whether ``framework`` offers ``attack`` with ``norm`` (installed or not: see :func:`version`)."""
    try:
        _check(framework, attack, norm)
    except RobustError:
        return False
    return True


def _foolbox_boundary_steps(p: dict[str, Any]) -> int:
    """The most steps s whose s + s // 10 queries (a spherical check every 10th step) fit after the start."""
    room = p["max_queries"] - p["init_steps"] - 4
    return max(1, 10 * (room // 11) + min(9, room % 11))


def _pick(p: dict[str, Any], **theirs: str) -> dict[str, Any]:
    """``{their_name: p[our_name]}`` for values that pass unchanged."""
    return {name: p[ours] for name, ours in theirs.items()}


_SAME = {"initial_const": "initial_const", "confidence": "confidence", "binary_search_steps": "binary_search_steps"}
ArgsFn = Callable[[dict[str, Any]], dict[str, Any]]
_FOOLBOX_ARGS: dict[str, ArgsFn] = {  # constructor arguments; boundary's init attack is added by the runner
    "fgsm": lambda p: {},
    "pgd": lambda p: _pick(p, steps="steps", abs_stepsize="step_size", random_start="random_start"),
    "deepfool": lambda p: _pick(p, steps="steps", candidates="candidates", overshoot="overshoot"),
    "cw": lambda p: _pick(p, steps="steps", stepsize="lr", abort_early="abort_early", **_SAME),
    "boundary": lambda p: {"steps": _foolbox_boundary_steps(p), **_pick(
        p, spherical_step="spherical_step", source_step="source_step", step_adaptation="step_adaptation")},
}
_ART_ARGS: dict[str, ArgsFn] = {  # constructor arguments besides the estimator, norm, eps, targeted and batch size
    "fgsm": lambda p: {},
    "pgd": lambda p: {"num_random_init": p["restarts"] if p["random_start"] else 0,
                      **_pick(p, eps_step="step_size", max_iter="steps")},
    "deepfool": lambda p: _pick(p, max_iter="steps", epsilon="overshoot", nb_grads="candidates"),
    "cw": lambda p: _pick(p, max_iter="steps", learning_rate="lr", **_SAME),
    "boundary": lambda p: {"max_iter": max(1, p["max_queries"] // 40), "step_adapt": 1.0 / p["step_adaptation"],
                           **_pick(p, delta="spherical_step", epsilon="source_step", init_size="init_draws")},
}


def _foolbox_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    fb = require("foolbox")
    kwargs = _FOOLBOX_ARGS[attack](p)
    if attack == "boundary":
        kwargs["init_attack"] = fb.attacks.LinearSearchBlendedUniformNoiseAttack(directions=p["init_draws"],
                                                                                 steps=p["init_steps"])
    with refusals("foolbox", attack):
        fb_attack = getattr(fb.attacks, CLASSES["foolbox"][attack][norm])(**kwargs)
    start = p.get("starting_points")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xs, ys = x.detach().to(model.device), y.detach().to(model.device)
        kw = {} if start is None else {"starting_points": start.detach().to(model.device, xs.dtype)}
        with eval_mode(model), refusals("foolbox", attack):
            fmodel = fb.PyTorchModel(model, bounds=model.bounds, device=model.device)
            criterion = fb.criteria.TargetedMisclassification(ys) if targeted else ys
            raw, clipped, _ = fb_attack(fmodel, xs, criterion, epsilons=eps, **kw)
        out = clipped if attack in FIXED_EPS else raw
        if attack == "cw":  # Foolbox's CW returns an all-zero image where it found nothing: give back x there
            failed = (raw.flatten(1) == 0).all(dim=1).view(-1, *([1] * (xs.ndim - 1)))
            out = torch.where(failed, xs, out)
        return out.detach().to(device=x.device, dtype=x.dtype)
    return run


class _CastInput(nn.Module):
    """Casts ART's inputs to the data's dtype: under NumPy 2 its BoundaryAttack builds float64 candidates."""

    def __init__(self, model: Classifier, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype))


def _art_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    require("art")
    from art.attacks import evasion
    from art.estimators.classification import PyTorchClassifier

    cls = getattr(evasion, CLASSES["art"][attack][norm])
    args = _ART_ARGS[attack](p)
    if attack in FIXED_EPS:
        args.update(norm=float("inf") if norm == "linf" else 2, eps=eps)
    if attack != "fgsm":
        args["verbose"] = False
    if attack != "deepfool":
        args["targeted"] = targeted
    start = p.get("starting_points")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with eval_mode(model), refusals("art", attack):
            classes = model.num_classes or int(model(x[:1].detach().to(model.device)).shape[1])
            estimator = PyTorchClassifier(
                model=_CastInput(model, x.dtype), loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                nb_classes=classes, clip_values=model.bounds, device_type="gpu" if model.device.type == "cuda" else "cpu")
            art_attack = cls(estimator, batch_size=len(x), **args)
            kw = {} if start is None else {"x_adv_init": start.detach().cpu().float().numpy()}
            adv = art_attack.generate(x.detach().cpu().float().numpy(), y.detach().cpu().numpy(), **kw)
        return torch.from_numpy(adv).to(device=x.device, dtype=x.dtype)
    return run


def _robust_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    ours = create_attack(attack, **{**p, "norm": norm})

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ours(model, x, y, eps=eps, targeted=targeted).x_adv.to(device=x.device, dtype=x.dtype)
    return run


def make_runner(framework: str, attack: str, params: dict[str, Any], *, norm: str, eps: float | None,
                targeted: bool = False) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running ``framework``'s own ``attack``, set from our parameters.

    Args:
        framework: "robust", "art", "foolbox" or "autoattack".
        attack: one of :data:`ATTACKS` (for "robust", any registered attack).
        params: our hyperparameter names and values (missing ones take our defaults).
        norm: "linf" or "l2".
        eps: budget in input space; required by the fixed-budget attacks (:data:`FIXED_EPS`) and by
            AutoAttack's FAB; None runs another minimization attack unbounded.
        targeted: ``y`` holds target classes instead of labels.

    The runner returns the framework's raw output on ``x``'s device and dtype: not clipped,
    projected or judged (Foolbox's fgsm/pgd output is its ``clipped`` one, which Foolbox users
    get). One exception: Foolbox's CW returns an all-zero image where it failed; such samples
    come back equal to ``x``.

    Raises:
        RobustError: the framework is not installed, or does not offer the attack, the norm or a value.
    """
    _check(framework, attack, norm)
    if attack in FIXED_EPS and eps is None:
        raise RobustError(f"attack {attack!r} needs eps")
    p = {**_REGISTRY.get(attack).defaults, **{k: v for k, v in params.items() if v is not None}}
    p.pop("norm", None)
    if attack == "pgd" and p["step_size"] is None:
        p["step_size"] = 2.5 * float(eps or 0.0) / p["steps"]
    if framework == "robust":
        return _robust_runner(attack, p, norm, eps, targeted)
    if targeted and ("targeted", None, NONE) in [row[:3] for row in ROWS[framework][attack]]:
        raise RobustError(f"{framework}'s {attack!r} is untargeted only; run it with targeted=False")
    if framework == "autoattack":
        return autoattack.runner(attack, p, norm, eps, targeted)
    if attack in FIXED_EPS and p.get("loss", "ce") != "ce":
        raise RobustError(f"{framework}'s {attack!r} has only the cross-entropy loss, not loss={p['loss']!r}")
    build = _art_runner if framework == "art" else _foolbox_runner
    return build(attack, p, norm, eps, targeted)


def _class_names(module: Any, base: type) -> list[str]:
    return sorted(name for name, obj in vars(module).items() if not name.startswith("_") and isinstance(obj, type)
                  and issubclass(obj, base) and obj is not base and not inspect.isabstract(obj))


def capabilities() -> dict[str, dict[str, list[str]]]:
    """Attacks and defenses of each installed framework by introspection ({} when not installed).

    robust: its registries; ART: the evasion attacks of ``art.attacks.evasion`` and preprocessors of
    ``art.defences.preprocessor``; Foolbox: the public attack classes (aliases included) of ``foolbox.attacks``;
    AutoAttack: the attacks its ``AutoAttack`` class runs (apgd-ce, apgd-t, fab, ...) and its versions.
    """
    found: dict[str, dict[str, list[str]]] = {
        "robust": {"attacks": list_attacks(), "defenses": list_defenses()}, "art": {}, "foolbox": {}, "autoattack": {}}
    with contextlib.suppress(ImportError):  # the top-level import first: a blocked package counts as missing
        import_module("art")
        from art.attacks import evasion
        from art.attacks.attack import EvasionAttack
        from art.defences import preprocessor
        from art.defences.preprocessor.preprocessor import Preprocessor

        found["art"] = {"attacks": _class_names(evasion, EvasionAttack),
                        "defenses": _class_names(preprocessor, Preprocessor)}
    with contextlib.suppress(ImportError):
        foolbox = import_module("foolbox")

        found["foolbox"] = {"attacks": _class_names(foolbox.attacks, foolbox.attacks.base.Attack), "defenses": []}
    with contextlib.suppress(ImportError):
        found["autoattack"] = autoattack.capabilities()
    return found
