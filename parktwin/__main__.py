"""``python -m parktwin``: the ``parktwin`` command line."""

from parktwin.cli import main

main()
