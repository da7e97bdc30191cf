"""The composition root: the ``parktwin`` command line (:mod:`parktwin.cli`, one module per command group in
:mod:`parktwin.commands`) and the wiring of a running park (:mod:`parktwin.runtime`). The only package that
builds objects from several rooms (twin, protocols, energy, optimizer, dashboard) and connects them; no room
imports it."""
