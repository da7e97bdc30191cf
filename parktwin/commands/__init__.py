"""The ``parktwin`` commands, one module per command group; :mod:`parktwin.cli` puts them into one app."""
