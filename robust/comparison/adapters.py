"""One attack specification, run by robust or another framework: parameter tables and runners.

Our parameter names and values (an attack's ``defaults``) become the other framework's arguments;
:func:`mapping` says how faithful each translation is (data for reports). A runner returns the
framework's raw output, never clipped, projected or judged, so that the one verification step
elsewhere sees every violation. Each framework's runners live in a module of their own (ART,
Foolbox, AutoAttack's ``pyautoattack``, torchattacks, adv-lib, CleverHans), and each library is
imported only when a runner is built: this module works without any of them.

Example:
    >>> run = make_runner("foolbox", "pgd", {"steps": 10}, norm="linf", eps=0.3)
    >>> x_adv = run(model, x, y)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

import torch

from robust.comparison import advlib, art, autoattack, cleverhans, foolbox, torchattacks
from robust.comparison.common import FIXED_EPS, MODULES, FrameworkRefused, Runner
from robust.comparison.tables import CLASSES, EXACT, LOSSES, NONE, NORM_ARGS, ROWS, ParamMapping
from robust.errors import RobustError, suggest
from robust.model import Classifier
from robust.registry import ATTACKS as _REGISTRY
from robust.registry import create_attack, declarations, list_attacks, list_defenses

FRAMEWORKS = ("robust", "art", "foolbox", "autoattack", "torchattacks", "adv-lib", "cleverhans")
DEFAULT_FRAMEWORKS = ("robust", "art", "foolbox", "autoattack")  # what compare runs unless told; "all": FRAMEWORKS
ATTACKS = ("fgsm", "pgd", "mi-fgsm", "deepfool", "cw", "boundary", "apgd", "apgd-t", "fab", "fab-t", "square",
           "standard", "ddn", "fmn")
_RUNNERS: dict[str, Callable[[str, dict[str, Any], str, float | None, bool], Runner]] = {
    "art": art.runner, "foolbox": foolbox.runner, "autoattack": autoattack.runner, "torchattacks": torchattacks.runner,
    "adv-lib": advlib.runner, "cleverhans": cleverhans.runner}
_PEERS: dict[str, Callable[[], dict[str, list[str]]]] = {  # each installed framework's introspection
    "art": art.capabilities, "foolbox": foolbox.capabilities, "autoattack": autoattack.capabilities,
    "torchattacks": torchattacks.capabilities, "adv-lib": advlib.capabilities, "cleverhans": cleverhans.capabilities}
__all__ = ["ATTACKS", "DEFAULT_FRAMEWORKS", "FIXED_EPS", "FRAMEWORKS", "FrameworkRefused", "ParamMapping",
           "capabilities", "expand", "make_runner", "mapping", "supports", "version"]


def expand(frameworks: Sequence[str] | str) -> list[str]:
    """Framework names as given, with ``"all"`` standing for every one of :data:`FRAMEWORKS`.

    ``frameworks`` is a list of names or one comma-separated string ("robust,art", "all").
    Whether each is installed is checked later (:func:`version`): a missing one is left out
    of a comparison with a warning.
    """
    names = [f.strip() for f in frameworks.split(",")] if isinstance(frameworks, str) else list(frameworks)
    out: list[str] = []
    for name in names:
        for f in (FRAMEWORKS if name == "all" else (name,)):
            if f and f not in out:
                out.append(f)
    return out


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
    """Installed version of another framework (``"robust"``: ours); None if not importable.

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
    arg = NORM_ARGS.get(framework, {}).get(cls)
    theirs = f"{cls}(norm={arg[norm]})" if arg else cls
    return [ParamMapping("norm", theirs, EXACT, norm), *rows]


def supports(framework: str, attack: str, norm: str) -> bool:
    """Whether ``framework`` offers ``attack`` with ``norm`` (installed or not: see :func:`version`)."""
    try:
        _check(framework, attack, norm)
    except RobustError:
        return False
    return True


def _robust_runner(attack: str, p: dict[str, Any], norm: str, eps: float | None, targeted: bool) -> Runner:
    ours = create_attack(attack, **{**p, "norm": norm})

    def run(model: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ours(model, x, y, eps=eps, targeted=targeted).x_adv.to(device=x.device, dtype=x.dtype)
    return run


def make_runner(framework: str, attack: str, params: dict[str, Any], *, norm: str, eps: float | None,
                targeted: bool = False) -> Runner:
    """A function ``(model, x, y) -> x_adv`` running ``framework``'s own ``attack``, set from our parameters.

    Args:
        framework: one of :data:`FRAMEWORKS`.
        attack: one of :data:`ATTACKS` (for "robust", any registered attack).
        params: our hyperparameter names and values (missing ones take our defaults).
        norm: "linf", "l2", "l1" or "l0" (the frameworks offer FMN in the last two).
        eps: budget in input space; required by the fixed-budget attacks (:data:`FIXED_EPS`) and by
            AutoAttack's and torchattacks' FAB; None runs another minimization attack unbounded.
        targeted: ``y`` holds target classes instead of labels.

    The runner returns the framework's raw output on ``x``'s device and dtype: not clipped,
    projected or judged (Foolbox's fixed-budget output is its ``clipped`` one, which Foolbox
    users get). One exception: Foolbox's CW returns an all-zero image where it failed; such
    samples come back equal to ``x``. A library that raises on a batch raises
    :class:`~robust.comparison.common.FrameworkRefused` (the batch counts as failed).

    Raises:
        RobustError: the framework is not installed, or does not offer the attack, the norm or a value.
    """
    _check(framework, attack, norm)
    if attack in FIXED_EPS and eps is None:
        raise RobustError(f"attack {attack!r} needs eps")
    p = {**_REGISTRY.get(attack).defaults, **{k: v for k, v in params.items() if v is not None}}
    p.pop("norm", None)
    if attack in ("pgd", "mi-fgsm") and p["step_size"] is None:  # PGD: 2.5 eps / steps; MI-FGSM: eps / steps
        p["step_size"] = (2.5 if attack == "pgd" else 1.0) * float(eps or 0.0) / p["steps"]
    if framework == "robust":
        return _robust_runner(attack, p, norm, eps, targeted)
    if targeted and ("targeted", None, NONE) in [row[:3] for row in ROWS[framework][attack]]:
        raise RobustError(f"{framework}'s {attack!r} is untargeted only; run it with targeted=False")
    _check_loss(framework, attack, p.get("loss"))
    return _RUNNERS[framework](attack, p, norm, eps, targeted)


def _check_loss(framework: str, attack: str, loss: str | None) -> None:
    offered = LOSSES.get(framework, {}).get(attack, ("ce",))
    if loss is None or loss in offered:
        return
    if offered == ("ce",):
        raise RobustError(f"{framework}'s {attack!r} has only the cross-entropy loss, not loss={loss!r}")
    raise RobustError(f"{framework}'s {attack!r} has no loss {loss!r}; it offers {', '.join(offered)}")


def capabilities() -> dict[str, dict[str, list[str]]]:
    """Attacks and defenses of each installed framework by introspection ({} when not installed).

    robust: its registries; ART: the evasion attacks of ``art.attacks.evasion`` and preprocessors of
    ``art.defences.preprocessor``; Foolbox: the public attack classes (aliases included) of ``foolbox.attacks``;
    AutoAttack: the attacks its ``AutoAttack`` class runs (apgd-ce, apgd-t, fab, ...) and its versions;
    torchattacks: its attack classes; adv-lib: the functions of ``adv_lib.attacks``; CleverHans: the
    modules of ``cleverhans.torch.attacks``.
    """
    found: dict[str, dict[str, list[str]]] = {"robust": {"attacks": list_attacks(), "defenses": list_defenses()}}
    for framework, introspect in _PEERS.items():
        found[framework] = {}
        with contextlib.suppress(ImportError):  # the top-level import first: a blocked package counts as missing
            found[framework] = introspect()
    return found
