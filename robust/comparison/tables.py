"""Parameter tables of the framework comparison: how our hyperparameters map to each other framework.

Pure data (shown in reports), so it reads without any of them installed. ART, Foolbox and
AutoAttack are here; torchattacks, adv-lib and CleverHans in :mod:`robust.comparison.peer_tables`,
merged into :data:`CLASSES`, :data:`ROWS`, :data:`LOSSES` and :data:`NORM_ARGS` below.
"""

from __future__ import annotations

from dataclasses import dataclass

from robust.comparison import peer_tables

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
CLASSES: dict[str, dict[str, dict[str, str]]] = {
    "art": {"fgsm": {"linf": "FastGradientMethod", "l2": "FastGradientMethod"},
            "pgd": {"linf": "ProjectedGradientDescentPyTorch", "l2": "ProjectedGradientDescentPyTorch"},
            "deepfool": {"l2": "DeepFool"}, "cw": {"l2": "CarliniL2Method"}, "boundary": {"l2": "BoundaryAttack"},
            "apgd": {"linf": "AutoProjectedGradientDescent", "l2": "AutoProjectedGradientDescent"},
            "square": {"linf": "SquareAttack", "l2": "SquareAttack"},
            "mi-fgsm": {"linf": "MomentumIterativeMethod", "l2": "MomentumIterativeMethod"}},
    "foolbox": {"fgsm": {"linf": "LinfFastGradientAttack", "l2": "L2FastGradientAttack"},
                "pgd": {"linf": "LinfPGD", "l2": "L2PGD"},
                "deepfool": {"linf": "LinfDeepFoolAttack", "l2": "L2DeepFoolAttack"},
                "cw": {"l2": "L2CarliniWagnerAttack"}, "boundary": {"l2": "BoundaryAttack"},
                "ddn": {"l2": "DDNAttack"}, "fmn": {"linf": "LInfFMNAttack", "l2": "L2FMNAttack", "l1": "L1FMNAttack",
                        "l0": "L0FMNAttack"},
                "mi-fgsm": {"linf": "LinfMomentumIterativeFastGradientMethod",
                            "l2": "L2MomentumIterativeFastGradientMethod"}},
    "autoattack": {attack: {"linf": cls, "l2": cls} for attack, cls in (
        ("apgd", "APGDAttack"), ("apgd-t", "APGDAttack_targeted"), ("fab", "FABAttack_PT"),
        ("fab-t", "FABAttack_PT"), ("square", "SquareAttack"), ("standard", "AutoAttack"))},
}

_E, _A, _N = "exact", "approximate", "none"
_CE = "cross-entropy only: loss='margin' is refused"
_FREE = "minimization attack: the raw output is returned, not restricted to eps"
_LAST = "{} returns the last iterate, ours the first misclassified one"
_FB_TARGET = ("targeted", "criterion=TargetedMisclassification", _E, "")
_ART_LOSS = ("loss", "loss (of PyTorchClassifier)", _E, _CE)
Row = tuple[str, str | None, str, str]
ROWS: dict[str, dict[str, list[Row]]] = {  # (ours, theirs, match, note); the norm row is added by mapping()
    "art": {
        "fgsm": [("eps", "eps", _E, ""), _ART_LOSS, ("targeted", "targeted", _E, "")],
        "pgd": [
            ("eps", "eps", _E, ""), ("steps", "max_iter", _E, _LAST.format("ART")),
            ("step_size", "eps_step", _E, "None -> 2.5 * eps / steps"),
            ("random_start", "num_random_init", _A, "True -> 1, False -> 0; L2: ART draws uniformly in the ball's "
             "volume, ours a radius uniform in [0, eps]"),
            ("restarts", "num_random_init", _A, "num_random_init = restarts with random_start, else ART runs once"),
            _ART_LOSS, ("targeted", "targeted", _E, "")],
        "deepfool": [
            ("steps", "max_iter", _E, ""),
            ("overshoot", "epsilon", _A, "ART scales the perturbation by 1 + epsilon once at the end; ours "
             "every step, from the point clipped to the bounds"),
            ("candidates", "nb_grads", _A, "ART uses the union over the batch of each sample's top nb_grads "
             "classes at x; ours each sample's own, its label first"),
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
            ("step_size", "abs_stepsize", _E, "None -> 2.5 * eps / steps"),
            ("random_start", "random_start", _A, "L2: Foolbox draws uniformly in the ball's volume, ours a radius "
             "uniform in [0, eps]"),
            ("restarts", None, _N, "Foolbox has no restarts: runs once"),
            ("loss", "cross-entropy (built in)", _E, _CE), _FB_TARGET],
        "deepfool": [
            ("steps", "steps", _E, ""),
            ("overshoot", "overshoot", _A, "Foolbox scales the sum of the unclipped steps and clips only the point "
             "it evaluates; ours scales each step and goes on from the clipped point"),
            ("candidates", "candidates", _E, ""), ("eps", "epsilons", _A, _FREE),
            ("targeted", None, _N, "untargeted only")],
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
            ("starting_points", "starting_points", _A, "Foolbox refuses unless every starting point is adversarial; "
             "ours and ART fall back to noise per sample"), ("eps", "epsilons", _A, _FREE), _FB_TARGET],
    },
}

_FB_FREE = ("eps", "epsilons", _A, _FREE)
_MI_STEP = "None -> eps / steps"
ROWS["art"].update({
    "apgd": [
        ("eps", "eps", _E, "eps_step = 2 * eps: AutoAttack's first step"), ("steps", "max_iter", _E, ""),
        ("restarts", "nb_random_init", _A, "ART starts every run at a random point of the ball"),
        ("loss", "loss_type", _E, "ce -> the estimator's cross-entropy, dlr -> 'difference_logits_ratio'; "
         "loss='margin' is refused"),
        ("rho", None, _N, "ART fixes rho = 0.75 (our default)"),
        ("screen", None, _N, "ART attacks every point given; set screen=none for the same"),
        ("targeted", "targeted", _E, "")],
    "square": [
        ("eps", "eps", _E, ""),
        ("queries", "max_iter", _A, "max_iter = (queries - 1) // restarts - 1 iterations per restart, one query each "
         "for every point still robust, as for AutoAttack"),
        ("p_init", "p_init", _A, "ART halves p at fixed fractions of max_iter; ours on AutoAttack's schedule"),
        ("restarts", "nb_restarts", _A, "ART gives each restart the whole max_iter"),
        ("loss", "loss (logit difference, built in)", _E, "margin only: loss='ce' is refused"),
        ("screen", None, _N, "ART attacks every point given; set screen=none for the same"),
        ("prune", None, _N, "ART searches every point with its whole budget; set prune=none for the same"),
        ("targeted", None, _N, "untargeted only: ART's SquareAttack takes no targets")],
    "mi-fgsm": [
        ("eps", "eps", _E, ""), ("steps", "max_iter", _E, _LAST.format("ART")),
        ("step_size", "eps_step", _E, _MI_STEP),
        ("decay", "decay", _E, "the gradient is divided by its L1 norm before it is accumulated, as in the paper"),
        _ART_LOSS, ("targeted", "targeted", _E, "")],
})
ROWS["foolbox"].update({
    "ddn": [("steps", "steps", _E, peer_tables.DDN_LOSS.format("Foolbox")), ("gamma", "gamma", _E, ""), ("init_norm", "init_epsilon", _E, ""),
            _FB_FREE, _FB_TARGET],
    "fmn": [
        ("steps", "steps", _E, peer_tables.FMN_RADIUS.format("Foolbox")),
        ("alpha_init", "max_stepsize", _A, peer_tables.FMN_STEP.format("Foolbox")),
        ("alpha_final", "min_stepsize", _E, "None -> alpha_init / 100 in both"),
        ("gamma_init", "gamma", _A, "Linf as ours; L2: Foolbox 3.3.4's L2 projection keeps the perturbation as it is "
         "(its factor is norms / norms), so the radius never binds"),
        ("gamma_final", None, _N, "Foolbox anneals gamma to 0.001 always (our default)"),
        ("binary_search_steps", "binary_search_steps", _A, "bisections towards the starting points: Linf on "
         "Foolbox's absolute radii, ours on fractions of each starting point's distance; L2 the same"),
        ("starting_points", "starting_points", _A, "Foolbox refuses the batch unless every starting point is "
         "adversarial; ours bisects from those that are and starts the others at x"),
        _FB_FREE, _FB_TARGET],
    "mi-fgsm": [
        ("eps", "epsilons", _E, "the clipped output is returned"), ("steps", "steps", _E, _LAST.format("Foolbox")),
        ("step_size", "abs_stepsize", _E, _MI_STEP),
        ("decay", "momentum", _A, "Foolbox accumulates the raw gradient; ours (as the paper) the gradient divided "
         "by its L1 norm"),
        ("loss", "cross-entropy (built in)", _E, _CE), _FB_TARGET],
})

_AA_EPS = ("eps", "eps", _E, "bounds (lo, hi) other than (0, 1): AutoAttack sees the inputs as (x - lo) / (hi - lo) "
           "and eps / (hi - lo)")
_AA_LAST = "AutoAttack returns the last misclassified iterate, ours the first"
_AA_TOP = ("the top classes by logit at the clean point other than the label, in turn; at most classes - 1")
_AA_SCREEN = ("screen", None, _N, "AutoAttack attacks every point given; set screen=none for the same")


def _fab_rows(targeted: bool) -> list[Row]:
    each = " per target" if targeted else ""
    rows: list[Row] = [
        ("eps", "eps", _E, "required by AutoAttack's FAB: a point whose closest adversarial point lies beyond eps "
         "comes back as x; AutoAttack returns a run's closest point, ours the first within eps (bounds rescaled as "
         "for APGD)"),
        ("steps", "n_iter", _E, "iterations per run" + each),
        ("restarts", "n_restarts", _A, f"runs{each}, the first from x; AutoAttack starts the others at a random "
         "point at eps / 2 from x, ours at half of min(best distance so far, eps)"),
        ("eta", "eta", _E, ""), ("beta", "beta", _E, ""), ("alpha_max", "alpha_max", _E, ""),
        ("targeted", None, _N, "untargeted only: FABAttack_PT takes no target labels" + (
            " (targeted=True aims at the top classes itself)" if targeted else ""))]
    if targeted:
        rows.insert(-1, ("targets", "n_target_classes", _E, "with targeted=True: " + _AA_TOP))
        rows.insert(-1, _AA_SCREEN)
        rows.insert(-1, ("prune", None, _N, "AutoAttack runs every step for every point; set prune=none for the same"))
    return rows


ROWS["autoattack"] = {
    "apgd": [
        _AA_EPS, ("steps", "n_iter", _E, _AA_LAST),
        ("restarts", "n_restarts", _E, "a point already fooled is not restarted, in both"),
        ("loss", "loss", _E, "ce or dlr: AutoAttack's APGD has no margin loss, loss='margin' is refused"),
        ("rho", "rho", _E, ""),
        ("screen", None, _N, "AutoAttack restarts every point still robust; set screen=none for the same"),
        ("targeted", None, _N, "untargeted only: APGDAttack takes no target labels")],
    "apgd-t": [
        _AA_EPS, ("steps", "n_iter", _E, "per target; " + _AA_LAST), ("restarts", "n_restarts", _E, "per target"),
        ("rho", "rho", _E, ""),
        ("targets", "n_target_classes", _E, _AA_TOP + "; AutoAttack needs 4 classes for the targeted DLR (ours "
         "falls back to the targeted margin)"),
        _AA_SCREEN,
        ("targeted", None, _N, "untargeted only, as ours (success is any misclassification): APGDAttack_targeted "
         "takes no target labels")],
    "fab": _fab_rows(False),
    "fab-t": _fab_rows(True),
    "square": [
        _AA_EPS,
        ("queries", "n_queries", _E, "n_queries = (queries - 1) // restarts - 1 proposals per restart: ours counts "
         "the clean check and each start in its budget"),
        ("p_init", "p_init", _E, "resc_schedule=False: p halves after the same iterations as ours"),
        ("restarts", "n_restarts", _A, "ours share the budget, the remainder going to the first restarts; "
         "AutoAttack gives each restart the same n_queries"),
        ("loss", "loss", _E, "margin or ce untargeted; targeted runs use the cross-entropy of the target in both"),
        _AA_SCREEN, ("prune", None, _N, "AutoAttack searches every point with its whole budget; set prune=none for "
                     "the same"),
        ("targeted", "targeted", _E, "y holds the targets")],
    "standard": [
        ("eps", "eps", _E, "AutoAttack(version='standard'): APGD-CE, APGD-T, FAB-T, Square, each on the points "
         "the earlier ones left robust, as ours; bounds rescaled as for APGD"),
        ("steps", "n_iter (apgd, apgd_targeted, fab)", _E, "set on the objects (the APGD ones rebuilt so their "
         "checkpoints follow); AutoAttack's own: 100"),
        ("targets", "n_target_classes (apgd_targeted, fab)", _E, "set on the objects, at most classes - 1; "
         "AutoAttack's own: 9"),
        ("restarts", "n_restarts (apgd)", _E, "set on the object; AutoAttack's own: 1, ours 2"),
        ("queries", "n_queries (square)", _E, "n_queries = queries - 2: ours counts the clean check and the start; "
         "AutoAttack's own: 5000 (ours 5002)"),
        ("screen", None, _N, "AutoAttack runs APGD-T, FAB-T and Square on every point APGD-CE left robust; "
         "set screen=none for the same"),
        ("prune", None, _N, "AutoAttack's Square searches every point with its whole budget; set prune=none for "
         "the same"),
        ("fab_prune", None, _N, "AutoAttack's FAB-T runs every step for every point; set fab_prune=none for the same"),
        ("targeted", None, _N, "untargeted only, as ours")],
}

EXACT, APPROXIMATE, NONE = _E, _A, _N


def _takes_norm(linf: str, l2: str, *classes: str) -> dict[str, dict[str, str]]:
    return {cls: {"linf": linf, "l2": l2} for cls in classes}


CLASSES.update(peer_tables.CLASSES)
ROWS.update(peer_tables.ROWS)
# Our loss names each framework's implementation offers, where more than the cross-entropy.
LOSSES: dict[str, dict[str, tuple[str, ...]]] = {
    "art": {"apgd": ("ce", "dlr"), "square": ("margin",)},
    "autoattack": {"apgd": ("ce", "dlr"), "square": ("margin", "ce")}, **peer_tables.LOSSES}
# The classes (or functions) that take the norm as an argument, with its value for linf and l2.
NORM_ARGS: dict[str, dict[str, dict[str, str]]] = {
    "art": _takes_norm("np.inf", "2", "FastGradientMethod", "ProjectedGradientDescentPyTorch",
                       "AutoProjectedGradientDescent", "SquareAttack", "MomentumIterativeMethod"),
    "autoattack": _takes_norm("'Linf'", "'L2'", *{c for by_norm in CLASSES["autoattack"].values()
                                                for c in by_norm.values()}),
    **peer_tables.NORM_ARGS}
