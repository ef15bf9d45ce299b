"""Built-in defense plugins of ``robust``, registered through the ``robust.defenses`` entry points."""
