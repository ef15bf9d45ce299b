"""Package discovery for setuptools; everything else is in pyproject.toml.

``robust`` and its subpackages (data folders included) are discovered; the plugin folders
``attacks/`` and ``defenses/`` at the top of the repository are installed as
``robust.attacks`` and ``robust.defenses``, which pyproject.toml alone cannot express.
"""

from setuptools import find_namespace_packages, setup

PLUGINS = {"robust.attacks": "attacks", "robust.defenses": "defenses"}

setup(packages=[*find_namespace_packages(include=["robust", "robust.*"]), *PLUGINS], package_dir=PLUGINS)
