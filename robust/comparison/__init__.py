"""Other frameworks' implementations of our attacks, run on the same points and verified by our harness.

- :func:`compare`: each attack through robust, ART, Foolbox, AutoAttack, torchattacks, adv-lib and
  CleverHans (``frameworks="all"``), side by side (no cascade);
- :func:`external_attack`: one framework's attack as an :class:`~robust.Attack` for ``evaluate``;
- :mod:`robust.comparison.adapters` and :mod:`robust.comparison.tables`: the runners (one module
  per framework) and the parameter mapping (data: exact, approximate or missing per parameter).
"""

from robust.comparison.adapters import FRAMEWORKS, capabilities, make_runner, mapping, supports, version
from robust.comparison.external import ExternalAttack, external_attack
from robust.comparison.run import compare, comparison_table

__all__ = ["FRAMEWORKS", "ExternalAttack", "capabilities", "compare", "comparison_table", "external_attack",
           "make_runner", "mapping", "supports", "version"]
