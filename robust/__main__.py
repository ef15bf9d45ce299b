"""``python -m robust`` runs the command line."""

from robust.cli import main

main(prog_name="robust")
