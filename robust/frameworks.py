"""One attack specification, run by robust, ART or Foolbox: parameter tables and runners.

Our parameter names and values (an attack's ``defaults``) are translated into the other
framework's constructor and call arguments. The tables returned by :func:`mapping` say how
faithful each translation is ("exact", "approximate" or "none"); they are data for reports.
A runner returns the framework's raw output, never clipped, projected or judged, so that the
one verification step elsewhere sees every violation. ART and Foolbox are imported inside the
functions: importing this module is cheap and works without them.

Example:
    >>> run = make_runner("foolbox", "pgd", {"steps": 10}, norm="linf", eps=0.3)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import torch
from torch import nn

from robust.errors import RobustError, suggest
from robust.model import Classifier

FRAMEWORKS = ("robust", "art", "foolbox")
ATTACKS = ("fgsm", "pgd", "deepfool", "cw", "boundary")
FIXED_EPS = ("fgsm", "pgd")  # the others minimize the distance and take no budget
Runner = Callable[[Classifier, torch.Tensor, torch.Tensor], torch.Tensor]
_PIP = {"art": "adversarial-robustness-toolbox", "foolbox": "foolbox"}


@dataclass(frozen=True)
class ParamMapping:
    """How one of our parameters is expressed in another framework.

    Attributes:
        ours: our parameter name (or "eps", "norm", "targeted").
        theirs: the framework's parameter name, None when there is no equivalent.
        match: "exact", "approximate" or "none".
        note: what differs, e.g. how a budget is converted.
    """

    ours: str
    theirs: str | None
    match: str
    note: str = ""


# The class that implements each (attack, norm) in each framework.
_CLASSES: dict[str, dict[str, dict[str, str]]] = {
    "art": {"fgsm": {"linf": "FastGradientMethod", "l2": "FastGradientMethod"},
            "pgd": {"linf": "ProjectedGradientDescentPyTorch", "l2": "ProjectedGradientDescentPyTorch"},
            "deepfool": {"l2": "DeepFool"}, "cw": {"l2": "CarliniL2Method"}, "boundary": {"l2": "BoundaryAttack"}},
    "foolbox": {"fgsm": {"linf": "LinfFastGradientAttack", "l2": "L2FastGradientAttack"},
                "pgd": {"linf": "LinfPGD", "l2": "L2PGD"},
                "deepfool": {"linf": "LinfDeepFoolAttack", "l2": "L2DeepFoolAttack"},
                "cw": {"l2": "L2CarliniWagnerAttack"}, "boundary": {"l2": "BoundaryAttack"}},
}

_E, _A, _N = "exact", "approximate", "none"
_CE = "cross-entropy only: loss='margin' is refused"
_FREE = "minimization attack: the raw output is returned, not restricted to eps"
_LAST = "{} returns the last iterate, ours the first misclassified one"
_FB_TARGET = ("targeted", "criterion=TargetedMisclassification", _E, "")
_ART_LOSS = ("loss", "loss (of PyTorchClassifier)", _E, _CE)
Row = tuple[str, str | None, str, str]
_ROWS: dict[str, dict[str, list[Row]]] = {  # (ours, theirs, match, note); the norm row is added by mapping()
    "art": {
        "fgsm": [("eps", "eps", _E, ""), _ART_LOSS, ("targeted", "targeted", _E, "")],
        "pgd": [
            ("eps", "eps", _E, ""), ("steps", "max_iter", _E, _LAST.format("ART")),
            ("step_size", "eps_step", _E, "None -> 2.5 * eps / steps"),
            ("random_start", "num_random_init", _E, "True -> 1, False -> 0"),
            ("restarts", "num_random_init", _A, "num_random_init = restarts with random_start, else ART runs once"),
            _ART_LOSS, ("targeted", "targeted", _E, "")],
        "deepfool": [
            ("steps", "max_iter", _E, ""), ("overshoot", "epsilon", _E, "the perturbation is scaled by 1 + epsilon"),
            ("candidates", "nb_grads", _A, "ART ranks classes by the prediction at x, ours puts the label first "
             "(the same for correctly classified points)"),
            ("eps", None, _N, "no budget in ART: " + _FREE), ("targeted", None, _N, "untargeted only")],
        "cw": [
            ("steps", "max_iter", _E, ""), ("binary_search_steps", "binary_search_steps", _E, ""),
            ("lr", "learning_rate", _A, "ART: gradient descent with a halving/doubling line search; ours: Adam"),
            ("initial_const", "initial_const", _E, ""), ("confidence", "confidence", _E, ""),
            ("abort_early", None, _N, "ART has no early abort"), ("eps", None, _N, "no budget in ART: " + _FREE),
            ("targeted", "targeted", _E, "")],
        "boundary": [
            ("max_queries", "max_iter", _A, "budget: max_iter = max_queries / 40 (an iteration costs at least 21 "
             "queries per sample: 20 orthogonal candidates, then steps towards x)"),
            ("spherical_step", "delta", _E, ""), ("source_step", "epsilon", _E, ""),
            ("step_adaptation", "step_adapt", _A, "step_adapt = 1 / step_adaptation; ART adapts after every trial "
             "of 20 candidates, ours from running success rates"),
            ("init_draws", "init_size", _E, ""), ("init_steps", None, _N, "ART starts from the noise itself"),
            ("init_bisections", None, _N, "ART starts from the noise itself"),
            ("starting_points", "x_adv_init (generate)", _E, ""), ("eps", None, _N, "no budget in ART: " + _FREE),
            ("targeted", "targeted", _E, "set explicitly: ART's default is targeted=True")],
    },
    "foolbox": {
        "fgsm": [("eps", "epsilons", _E, "the clipped output is returned"),
                 ("loss", "cross-entropy (built in)", _E, _CE),
                 ("targeted", None, _N, "untargeted only: Foolbox's FGSM rejects a targeted criterion "
                  "(its targeted PGD with steps=1, step_size=eps takes the same step)")],
        "pgd": [
            ("eps", "epsilons", _E, "the clipped output is returned"), ("steps", "steps", _E, _LAST.format("Foolbox")),
            ("step_size", "abs_stepsize", _E, "None -> 2.5 * eps / steps"), ("random_start", "random_start", _E, ""),
            ("restarts", None, _N, "Foolbox has no restarts: runs once"),
            ("loss", "cross-entropy (built in)", _E, _CE), _FB_TARGET],
        "deepfool": [
            ("steps", "steps", _E, ""), ("overshoot", "overshoot", _E, ""), ("candidates", "candidates", _E, ""),
            ("eps", "epsilons", _A, _FREE), ("targeted", None, _N, "untargeted only")],
        "cw": [
            ("steps", "steps", _E, ""), ("lr", "stepsize", _E, ""),
            ("binary_search_steps", "binary_search_steps", _E, ""), ("initial_const", "initial_const", _E, ""),
            ("confidence", "confidence", _E, ""), ("abort_early", "abort_early", _E, ""),
            ("eps", "epsilons", _A, _FREE + "; failures (all-zero images) come back as x"), _FB_TARGET],
        "boundary": [
            ("max_queries", "steps", _A, "budget: steps = (max_queries - init_steps - 4) / 1.1 (1.1 queries a step, "
             "init_steps + 2 for the start, 2 checks); extra noise draws come on top"),
            ("spherical_step", "spherical_step", _E, ""), ("source_step", "source_step", _E, ""),
            ("step_adaptation", "step_adaptation", _E, ""),
            ("init_draws", "directions (LinearSearchBlendedUniformNoiseAttack)", _A,
             "noise is drawn for the whole batch until every sample has an adversarial one"),
            ("init_steps", "steps (LinearSearchBlendedUniformNoiseAttack)", _A, "linear search only"),
            ("init_bisections", None, _N, "Foolbox's start has no bisection"),
            ("starting_points", "starting_points", _E, ""), ("eps", "epsilons", _A, _FREE), _FB_TARGET],
    },
}


def _attack_class(attack: str) -> Any:
    from robust.registry import ATTACKS as REGISTRY

    return REGISTRY.get(attack)


def _check(framework: str, attack: str, norm: str) -> None:
    if framework not in FRAMEWORKS:
        raise RobustError(f"unknown framework {framework!r}{suggest(framework, FRAMEWORKS)}; "
                          f"known: {', '.join(FRAMEWORKS)}")
    if framework == "robust":
        cls = _attack_class(attack)
        if norm not in cls.norms:
            raise RobustError(f"robust's {attack!r} supports norms {', '.join(cls.norms)}, not {norm!r}")
        return
    offered = _CLASSES[framework].get(attack)
    if offered is None:
        raise RobustError(f"{framework} does not offer attack {attack!r}{suggest(attack, ATTACKS)}; "
                          f"it offers {', '.join(_CLASSES[framework])}")
    if norm not in offered:
        raise RobustError(f"{framework} does not offer {attack!r} with norm {norm!r}; "
                          f"it offers {', '.join(offered)}")


def version(framework: str) -> str | None:
    """Installed version of ``"art"`` or ``"foolbox"`` (``"robust"``: ours); None if not importable."""
    if framework == "robust":
        from robust import __version__

        return __version__
    if framework not in _PIP:
        raise RobustError(f"unknown framework {framework!r}{suggest(framework, FRAMEWORKS)}")
    try:
        module = import_module(framework)
    except ImportError:
        return None
    return str(getattr(module, "__version__", "unknown"))


def mapping(framework: str, attack: str, norm: str) -> list[ParamMapping]:
    """The parameter table of ``attack`` with ``norm`` in ``framework`` (data; needs no install).

    Raises:
        RobustError: the framework does not offer the attack or the norm (named in the message).
    """
    _check(framework, attack, norm)
    if framework == "robust":
        names = [k for k in _attack_class(attack).defaults if k != "norm"]
        return [ParamMapping("norm", "norm", _E, norm), ParamMapping("eps", "eps", _E),
                *(ParamMapping(k, k, _E) for k in names), ParamMapping("targeted", "targeted", _E)]
    cls = _CLASSES[framework][attack][norm]
    theirs = f"{cls}(norm={'np.inf' if norm == 'linf' else 2})" if cls.startswith(("Fast", "Projected")) else cls
    return [ParamMapping("norm", theirs, _E, norm), *(ParamMapping(*row) for row in _ROWS[framework][attack])]


def supports(framework: str, attack: str, norm: str) -> bool:
    """Whether ``framework`` offers ``attack`` with ``norm`` (installed or not: see :func:`version`)."""
    try:
        _check(framework, attack, norm)
    except RobustError:
        return False
    return True


@contextlib.contextmanager
def _eval_mode(model: Classifier) -> Iterator[None]:
    """Eval mode inside the block (the frameworks call ``.eval()`` themselves); every module's mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _foolbox_boundary_steps(p: dict[str, Any]) -> int:
    """The most steps s with s + s // 10 queries (one spherical check every 10th step) that fit after the start."""
    room = p["max_queries"] - p["init_steps"] - 4
    return max(1, 10 * (room // 11) + min(9, room % 11))


def _foolbox_args(fb: Any, attack: str, p: dict[str, Any], eps: float | None) -> dict[str, Any]:
    """Constructor keyword arguments of the Foolbox attack."""
    if attack == "pgd":
        return {"steps": p["steps"], "abs_stepsize": p["step_size"], "random_start": bool(p["random_start"])}
    if attack == "deepfool":
        return {"steps": p["steps"], "candidates": p["candidates"], "overshoot": p["overshoot"]}
    if attack == "cw":
        return {"steps": p["steps"], "stepsize": p["lr"], "binary_search_steps": p["binary_search_steps"],
                "initial_const": p["initial_const"], "confidence": p["confidence"], "abort_early": p["abort_early"]}
    if attack == "boundary":
        init = fb.attacks.LinearSearchBlendedUniformNoiseAttack(directions=p["init_draws"], steps=p["init_steps"])
        return {"steps": _foolbox_boundary_steps(p), "spherical_step": p["spherical_step"], "init_attack": init,
                "source_step": p["source_step"], "step_adaptation": p["step_adaptation"]}
    return {}


def _foolbox_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    fb = _require("foolbox")
    fb_attack = getattr(fb.attacks, _CLASSES["foolbox"][attack][norm])(**_foolbox_args(fb, attack, p, eps))
    start = p.get("starting_points")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xs, ys = x.detach().to(model.device), y.detach().to(model.device)
        kw = {} if start is None else {"starting_points": start.detach().to(model.device, xs.dtype)}
        with _eval_mode(model):
            fmodel = fb.PyTorchModel(model, bounds=model.bounds, device=model.device)
            criterion = fb.criteria.TargetedMisclassification(ys) if targeted else ys
            raw, clipped, _ = fb_attack(fmodel, xs, criterion, epsilons=eps, **kw)
        out = clipped if attack in FIXED_EPS else raw
        if attack == "cw":  # Foolbox's CW returns an all-zero image where it found nothing: give back x there
            failed = (raw.flatten(1) == 0).all(dim=1).view(-1, *([1] * (xs.ndim - 1)))
            out = torch.where(failed, xs, out)
        return out.detach().to(device=x.device, dtype=x.dtype)
    return run


def _art_args(attack: str, p: dict[str, Any], norm: str, eps: float | None, n: int) -> dict[str, Any]:
    """Constructor keyword arguments of the ART attack, its estimator and ``targeted`` aside."""
    order = float("inf") if norm == "linf" else 2
    if attack == "fgsm":
        return {"norm": order, "eps": eps, "batch_size": n}
    if attack == "pgd":
        return {"norm": order, "eps": eps, "eps_step": p["step_size"], "max_iter": p["steps"], "batch_size": n,
                "num_random_init": p["restarts"] if p["random_start"] else 0, "verbose": False}
    if attack == "deepfool":
        return {"max_iter": p["steps"], "epsilon": p["overshoot"], "nb_grads": p["candidates"], "batch_size": n,
                "verbose": False}
    if attack == "cw":
        return {"max_iter": p["steps"], "learning_rate": p["lr"], "binary_search_steps": p["binary_search_steps"],
                "initial_const": p["initial_const"], "confidence": p["confidence"], "batch_size": n, "verbose": False}
    return {"max_iter": max(1, p["max_queries"] // 40), "delta": p["spherical_step"], "epsilon": p["source_step"],
            "step_adapt": 1.0 / p["step_adaptation"], "init_size": p["init_draws"], "verbose": False}


class _CastInput(nn.Module):
    """Casts ART's inputs to the data's dtype: under NumPy 2 its BoundaryAttack builds float64 candidates."""

    def __init__(self, model: Classifier, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype))


def _art_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    _require("art")
    from art.attacks import evasion
    from art.estimators.classification import PyTorchClassifier

    cls = getattr(evasion, _CLASSES["art"][attack][norm])
    start = p.get("starting_points")

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with _eval_mode(model):
            classes = model.num_classes or int(model(x[:1].detach().to(model.device)).shape[1])
            estimator = PyTorchClassifier(
                model=_CastInput(model, x.dtype), loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                nb_classes=classes, clip_values=model.bounds, device_type="gpu" if model.device.type == "cuda" else "cpu")
            args = _art_args(attack, p, norm, eps, len(x))
            art_attack = cls(estimator, **args) if attack == "deepfool" else cls(estimator, targeted=targeted, **args)
            kw = {} if start is None else {"x_adv_init": start.detach().cpu().float().numpy()}
            adv = art_attack.generate(x.detach().cpu().float().numpy(), y.detach().cpu().numpy(), **kw)
        return torch.from_numpy(adv).to(device=x.device, dtype=x.dtype)
    return run


def _robust_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    from robust.registry import create_attack

    ours = create_attack(attack, **{**p, "norm": norm})

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ours(model, x, y, eps=eps, targeted=targeted).x_adv.to(device=x.device, dtype=x.dtype)
    return run


def _require(framework: str) -> Any:
    try:
        return import_module(framework)
    except ImportError as exc:
        raise RobustError(f"{framework} is not installed: pip install {_PIP[framework]}") from exc


def make_runner(framework: str, attack: str, params: dict[str, Any], *, norm: str, eps: float | None,
                targeted: bool = False) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running ``framework``'s own ``attack``, set from our parameters.

    Args:
        framework: "robust", "art" or "foolbox".
        attack: one of :data:`ATTACKS` (for "robust", any registered attack).
        params: our hyperparameter names and values (missing ones take our defaults).
        norm: "linf" or "l2".
        eps: budget in input space; required by fgsm and pgd, None runs a minimization attack unbounded.
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
    p = {**_attack_class(attack).defaults, **{k: v for k, v in params.items() if v is not None}}
    p.pop("norm", None)
    if attack == "pgd" and p["step_size"] is None:
        p["step_size"] = 2.5 * float(eps or 0.0) / p["steps"]
    if framework == "robust":
        return _robust_runner(attack, p, norm, eps, targeted)
    if attack in FIXED_EPS and p.get("loss", "ce") != "ce":
        raise RobustError(f"{framework}'s {attack!r} has only the cross-entropy loss, not loss={p['loss']!r}")
    if targeted and ("targeted", None, _N) in [row[:3] for row in _ROWS[framework][attack]]:
        raise RobustError(f"{framework}'s {attack!r} is untargeted only; run it with targeted=False")
    build = _art_runner if framework == "art" else _foolbox_runner
    return build(attack, p, norm, eps, targeted)


def _class_names(module: Any, base: type) -> list[str]:
    return sorted(name for name, obj in vars(module).items() if not name.startswith("_") and isinstance(obj, type)
                  and issubclass(obj, base) and obj is not base and not inspect.isabstract(obj))


def capabilities() -> dict[str, dict[str, list[str]]]:
    """Attacks and defenses each installed framework offers, by introspection ({} when not installed).

    robust's come from its registries; ART's are the evasion attacks under ``art.attacks.evasion``
    and the preprocessors under ``art.defences.preprocessor``; Foolbox's are the public attack
    classes (aliases such as ``LinfPGD`` included) of ``foolbox.attacks``.
    """
    from robust.registry import list_attacks, list_defenses

    found: dict[str, dict[str, list[str]]] = {
        "robust": {"attacks": list_attacks(), "defenses": list_defenses()}, "art": {}, "foolbox": {}}
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
    return found
