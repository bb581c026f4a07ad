"""``python -m geo.cli ...``: the ``dolbom`` command line."""

from geo.cli import main

main()
