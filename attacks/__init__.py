"""Built-in attack plugins of ``robust``, registered through the ``robust.attacks`` entry points."""
