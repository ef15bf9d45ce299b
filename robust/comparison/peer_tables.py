"""Parameter tables of torchattacks, adv-lib and CleverHans: how our hyperparameters map to theirs.

Pure data, merged into :mod:`robust.comparison.tables` (which says what a row means). Each row
is ``(ours, theirs, match, note)``, match one of "exact", "approximate" or "none" (then
``theirs`` is None); the norm row is added by :func:`robust.comparison.adapters.mapping`.
torchattacks and adv-lib assume inputs in [0, 1]: for other bounds ``(lo, hi)`` they see
``(x - lo) / (hi - lo)``, with eps, step sizes and initial norms divided by ``hi - lo``.
CleverHans takes the bounds itself.
"""

from __future__ import annotations

_E, _A, _N = "exact", "approximate", "none"
Row = tuple[str, str | None, str, str]

CLASSES: dict[str, dict[str, dict[str, str]]] = {
    "torchattacks": {
        "fgsm": {"linf": "FGSM"}, "pgd": {"linf": "PGD", "l2": "PGDL2"}, "mi-fgsm": {"linf": "MIFGSM"},
        "deepfool": {"l2": "DeepFool"}, "cw": {"l2": "CW"},
        **{attack: {"linf": cls, "l2": cls} for attack, cls in (
            ("apgd", "APGD"), ("apgd-t", "APGDT"), ("fab", "FAB"), ("fab-t", "FAB"), ("square", "Square"),
            ("standard", "AutoAttack"))}},
    "adv-lib": {
        "pgd": {"linf": "pgd_linf"}, "ddn": {"l2": "ddn"}, "cw": {"l2": "carlini_wagner_l2"},
        **{attack: {"linf": fn, "l2": fn} for attack, fn in (
            ("apgd", "apgd"), ("apgd-t", "apgd_targeted"), ("fab", "fab"), ("fab-t", "fab"), ("deepfool", "df"))},
        "fmn": {"linf": "fmn", "l2": "fmn", "l1": "fmn", "l0": "fmn"}},
    "cleverhans": {
        "fgsm": {"linf": "fast_gradient_method", "l2": "fast_gradient_method"},
        "pgd": {"linf": "projected_gradient_descent", "l2": "projected_gradient_descent"},
        "cw": {"l2": "carlini_wagner_l2"}},
}

LOSSES: dict[str, dict[str, tuple[str, ...]]] = {
    "torchattacks": {"apgd": ("ce", "dlr"), "square": ("margin", "ce")},
    "adv-lib": {"pgd": ("ce", "margin", "dlr"), "apgd": ("ce", "dlr")},
}


def _takes_norm(linf: str, l2: str, *names: str) -> dict[str, dict[str, str]]:
    return {name: {"linf": linf, "l2": l2} for name in names}


NORM_ARGS: dict[str, dict[str, dict[str, str]]] = {
    "torchattacks": _takes_norm("'Linf'", "'L2'", "APGD", "APGDT", "FAB", "Square", "AutoAttack"),
    "adv-lib": {**_takes_norm("float('inf')", "2", "apgd", "apgd_targeted", "fab", "df"),
                "fmn": {"linf": "float('inf')", "l2": "2", "l1": "1", "l0": "0"}},
    "cleverhans": _takes_norm("np.inf", "2", "fast_gradient_method", "projected_gradient_descent"),
}

DDN_LOSS = ("{} ascends the cross-entropy throughout, ours the cross-entropy for the first half of the steps and "
             "the logit margin for the second (closer minima where the softmax is flat)")
FMN_RADIUS = ("until a point's first adversarial iterate, ours widens the boundary estimate by 1 + gamma / 10 and never "
               "shrinks the radius, so a point cannot stall on the boundary itself, and in L2 and L1 it scales each "
               "perturbation up to the radius; {} follows the paper's rule")
FMN_STEP = ("None -> 1.0 in both, except in L0, where ours steps by the box's diagonal ((hi - lo) * sqrt(d)) and "
            "{} by 1.0: give alpha_init for the same steps")
_CE = "cross-entropy only: another loss is refused"
_FREE = "minimization attack: the raw output is returned, not restricted to eps"
_LAST = "{} returns the last iterate, ours the first misclassified one"
_BY_LABEL = ("targeted", "set_mode_targeted_by_label()", _E, "y holds the targets")
_TARGET = ("targeted", "targeted", _E, "y holds the targets")
_UNTARGETED = ("targeted", None, _N, "untargeted only")
_TA_EPS = ("eps", "eps", _E, "")
_TOP = "the top classes by logit at the clean point other than the label, in turn; at most classes - 1"


def _screen(lib: str) -> Row:
    return ("screen", None, _N, f"{lib} attacks every point given; set screen=none for the same")


def _prune(lib: str) -> Row:
    return ("prune", None, _N, f"{lib} runs every step for every point; set prune=none for the same")


def _fab(lib: str, eps: Row, restarts: Row, extra: list[Row]) -> list[Row]:
    names = {"torchattacks": ("steps", "eta", "beta", "alpha_max"), "adv-lib": ("n_iter", "η", "β", "α_max")}[lib]
    return [eps, ("steps", names[0], _E, "iterations per run (per target for fab-t)"), restarts,
            ("eta", names[1], _E, ""), ("beta", names[2], _E, ""), ("alpha_max", names[3], _E, ""), *extra,
            ("targeted", None, _N, "untargeted only")]


_TA_FAB_EPS = ("eps", "eps", _E, "required: torchattacks' FAB returns x where its closest point lies beyond eps")
_TA_RESTARTS = ("restarts", "n_restarts", _A, "runs (per target for fab-t), the first from x; torchattacks starts "
                "the others at a random point at eps / 2 from x, ours at half of min(best distance so far, eps)")
_AL_FAB_EPS = ("eps", "ε", _A, "only the restart radius: restarts start at half of min(best distance so far, eps) "
               "from x, as ours; adv-lib keeps minimizing past eps and returns its closest point")

ROWS: dict[str, dict[str, list[Row]]] = {
    "torchattacks": {
        "fgsm": [_TA_EPS, ("loss", "cross-entropy (built in)", _E, _CE), _BY_LABEL],
        "pgd": [
            _TA_EPS, ("steps", "steps", _E, _LAST.format("torchattacks")),
            ("step_size", "alpha", _E, "None -> 2.5 * eps / steps"),
            ("random_start", "random_start", _E, "Linf: uniform in the ball; L2: a direction and a radius "
             "uniform in [0, eps], in both"),
            ("restarts", None, _N, "torchattacks has no restarts: runs once"),
            ("loss", "cross-entropy (built in)", _E, _CE), _BY_LABEL],
        "mi-fgsm": [
            _TA_EPS, ("steps", "steps", _E, _LAST.format("torchattacks")),
            ("step_size", "alpha", _E, "None -> eps / steps"),
            ("decay", "decay", _E, "the gradient is divided by its mean absolute value before it is accumulated "
             "(the paper's L1 normalization, up to a constant)"),
            ("loss", "cross-entropy (built in)", _E, _CE), _BY_LABEL],
        "deepfool": [
            ("steps", "steps", _E, "one image at a time: torchattacks loops over the batch in Python"),
            ("overshoot", "overshoot", _E, "each step, from the point clipped to the bounds, as ours"),
            ("candidates", None, _N, "torchattacks uses every class"),
            ("eps", None, _N, "no budget in torchattacks: " + _FREE), _UNTARGETED],
        "cw": [
            ("steps", "steps", _E, ""), ("lr", "lr", _E, ""),
            ("initial_const", "c", _A, "no binary search: c stays initial_const"),
            ("binary_search_steps", None, _N, "torchattacks has no binary search on c"),
            ("confidence", "kappa", _E, ""),
            ("abort_early", "(always on)", _A, "torchattacks stops when the total loss rose since its last check "
             "(every steps // 10 steps)"),
            ("eps", None, _N, "no budget in torchattacks: " + _FREE), _BY_LABEL],
        "apgd": [
            _TA_EPS, ("steps", "steps", _E, "torchattacks' port of AutoAttack's APGD"),
            ("restarts", "n_restarts", _E, ""), ("loss", "loss", _E, "ce or dlr: loss='margin' is refused"),
            ("rho", "rho", _E, ""), _screen("torchattacks"), _UNTARGETED],
        "apgd-t": [
            _TA_EPS, ("steps", "steps", _E, "per target"), ("restarts", "n_restarts", _E, "per target"),
            ("rho", "rho", _E, ""), ("targets", "n_classes", _E, "n_classes = targets + 1: " + _TOP),
            _screen("torchattacks"), _UNTARGETED],
        "fab": _fab("torchattacks", _TA_FAB_EPS, _TA_RESTARTS, []),
        "fab-t": _fab("torchattacks", _TA_FAB_EPS, _TA_RESTARTS, [
            ("targets", "n_classes", _E, "multi_targeted=True, n_classes = targets + 1: " + _TOP),
            _screen("torchattacks"), _prune("torchattacks")]),
        "square": [
            _TA_EPS, ("queries", "n_queries", _E, "n_queries = (queries - 1) // restarts - 1 proposals per restart"),
            ("p_init", "p_init", _E, "resc_schedule=False: p halves after the same iterations as ours"),
            ("restarts", "n_restarts", _A, "torchattacks gives each restart the same n_queries"),
            ("loss", "loss", _E, "margin or ce"),
            _screen("torchattacks"),
            ("prune", None, _N, "torchattacks searches every point with its whole budget; set prune=none for the same"),
            _BY_LABEL],
        "standard": [
            ("eps", "eps", _E, "AutoAttack(version='standard'): torchattacks' APGD-CE, APGD-T, FAB-T and Square, "
             "each on the points the earlier ones left robust"),
            ("steps", "steps (APGD, APGDT, FAB)", _E, "set on the objects; torchattacks' own: 10"),
            ("targets", "n_classes", _E, "n_classes = targets + 1 (at most the model's classes)"),
            ("restarts", "n_restarts (APGD)", _E, "set on the object; torchattacks' own: 1"),
            ("queries", "n_queries (Square)", _E, "n_queries = queries - 2; torchattacks' own: 5000"),
            _screen("torchattacks"),
            ("prune", None, _N, "torchattacks' Square searches every point with its whole budget; set prune=none"),
            ("fab_prune", None, _N, "torchattacks' FAB-T runs every step for every point; set fab_prune=none"),
            _UNTARGETED],
    },
    "adv-lib": {
        "pgd": [
            ("eps", "ε", _E, ""),
            ("steps", "steps", _A, "adv-lib checks the iterates before each step (not the last one) and returns the "
             "last misclassified one; ours the first"),
            ("step_size", "absolute_step_size", _E, "None -> 2.5 * eps / steps"),
            ("random_start", "random_init", _E, ""), ("restarts", "restarts", _E, "only points not yet fooled"),
            ("loss", "loss_function", _E, "ce, margin (adv-lib's 'dl') or dlr"), _TARGET],
        "apgd": [
            ("eps", "eps", _E, ""), ("steps", "n_iter", _E, "adv-lib's port of AutoAttack's APGD"),
            ("restarts", "n_restarts", _E, ""), ("loss", "loss_function", _E, "ce or dlr: loss='margin' is refused"),
            ("rho", "rho", _E, ""), _screen("adv-lib"), _TARGET],
        "apgd-t": [
            ("eps", "eps", _E, ""), ("steps", "n_iter", _E, "per target"), ("restarts", "n_restarts", _E, "per target"),
            ("rho", "rho", _E, ""), ("targets", "num_targets", _E, _TOP),
            _screen("adv-lib"), _UNTARGETED],
        "fab": _fab("adv-lib", _AL_FAB_EPS, ("restarts", "restarts", _E, "runs, the first from x"), []),
        "fab-t": _fab("adv-lib", _AL_FAB_EPS, (
            "restarts", "restarts", _A, "targeted_restarts=True: restarts = targets with restarts=1; more restarts "
            "attack every other class (classes - 1) * restarts times, the later runs from random points"), [
            ("targets", "restarts", _E, "targeted_restarts=True: " + _TOP),
            _screen("adv-lib"), _prune("adv-lib")]),
        "fmn": [
            ("steps", "steps", _E, FMN_RADIUS.format("adv-lib")),
            ("alpha_init", "α_init", _A, FMN_STEP.format("adv-lib")),
            ("alpha_final", "α_final", _E, "None -> alpha_init / 100 in both"), ("gamma_init", "γ_init", _E, ""),
            ("gamma_final", "γ_final", _E, ""),
            ("binary_search_steps", "binary_search_steps", _A, "bisections towards the starting points: Linf on "
             "adv-lib's absolute radii in [0, 1], ours on fractions of each starting point's distance; L2 the same"),
            ("starting_points", "starting_points", _A, "adv-lib refuses the batch unless every starting point is "
             "adversarial; ours bisects from those that are and starts the others at x"),
            ("eps", None, _N, "no budget in adv-lib's FMN: " + _FREE), _TARGET],
        "ddn": [
            ("steps", "steps", _E, DDN_LOSS.format("adv-lib")), ("gamma", "γ", _E, ""), ("init_norm", "init_norm", _E, ""),
            ("eps", None, _N, "no budget in adv-lib's DDN: " + _FREE + "; levels=None: no quantization to 256 "
             "levels (adv-lib's default quantizes)"), _TARGET],
        "cw": [
            ("steps", "max_iterations", _E, ""), ("lr", "learning_rate", _E, ""),
            ("binary_search_steps", "binary_search_steps", _E, ""), ("initial_const", "initial_const", _E, ""),
            ("confidence", "confidence", _E, ""), ("abort_early", "abort_early", _E, ""),
            ("eps", None, _N, "no budget in adv-lib's CW: " + _FREE), _TARGET],
        "deepfool": [
            ("steps", "steps", _E, ""), ("overshoot", "overshoot", _E, "each step, from the clipped point, as ours"),
            ("candidates", None, _N, "adv-lib uses every class"),
            ("eps", None, _N, "no budget in adv-lib's DeepFool: " + _FREE), _UNTARGETED],
    },
    "cleverhans": {
        "fgsm": [("eps", "eps", _E, ""), ("loss", "cross-entropy (built in)", _E, _CE), _TARGET],
        "pgd": [
            ("eps", "eps", _E, ""), ("steps", "nb_iter", _E, _LAST.format("CleverHans")),
            ("step_size", "eps_iter", _E, "None -> 2.5 * eps / steps; CleverHans asserts eps_iter <= eps"),
            ("random_start", "rand_init", _A, "Linf: uniform in the ball; L2: CleverHans draws uniformly in the "
             "eps box, then projects onto the ball"),
            ("restarts", None, _N, "CleverHans has no restarts: runs once"),
            ("loss", "cross-entropy (built in)", _E, _CE), _TARGET],
        "cw": [
            ("steps", "max_iterations", _E, "per binary search step"), ("lr", "lr", _E, ""),
            ("binary_search_steps", "binary_search_steps", _A, "CleverHans keeps the perturbation and Adam's state "
             "from one constant to the next; ours starts each afresh"),
            ("initial_const", "initial_const", _E, ""), ("confidence", "confidence", _E, ""),
            ("abort_early", None, _N, "CleverHans runs every step"),
            ("eps", None, _N, "no budget in CleverHans: " + _FREE), _TARGET],
    },
}
