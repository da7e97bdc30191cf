"""The EV chargers' LP block: the power of each charging session, which must deliver its energy by departure.

Columns: ``ev[s,t]`` (kW) per session of the horizon's inputs, up to its charger's maximum while the
vehicle is plugged in (0 outside its window, or when no charger of the park has the session's id).
Rows: ``sum_t ev[s,t] dt = energy[s]`` (kWh) per session.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock, Term
from optimizer.inputs import HorizonInputs
from optimizer.linear_program import Labels
from twin.kinds import EVCharger


class EVChargerBlock(KindBlock):
    kind = "ev_charger"
    primary_columns = ("ev_kw",)
    assets: tuple[EVCharger, ...]

    def import_max_kw(self, inputs: HorizonInputs) -> float:
        return sum(c.power_max_kw for c in self.assets)

    def variables(self, lp: Assembly) -> None:
        self.sessions = lp.inputs.ev_sessions
        charger_max = {c.id: c.power_max_kw for c in self.assets}
        ev_upper = np.zeros((len(self.sessions), lp.step_count))
        for s, session in enumerate(self.sessions):
            in_window = (lp.inputs.index >= session.arrival_utc) & (lp.inputs.index < session.departure_utc)
            ev_upper[s, in_window] = charger_max.get(session.charger_id, 0.0)
        self.session_ids = [f"{session.charger_id}#{s}" for s, session in enumerate(self.sessions)]
        self.ev = lp.builder.variables("ev_kw", (len(self.sessions), lp.step_count), 0.0, ev_upper,
                                       labels=Labels.of("ev_kw", self.session_ids, lp.steps))

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.ev.T, -1.0)]

    def terminal(self, lp: Assembly) -> None:
        """Each session's energy by its departure."""
        if self.sessions:
            energy = np.array([s.energy_kwh for s in self.sessions])
            lp.builder.rows_of(len(self.sessions), energy, energy, [(self.ev, lp.step_h)],
                               labels=Labels.of("energy_kwh", self.session_ids))

    def table_columns(self, x: NDArray[np.float64], steps: int) -> dict[str, NDArray[np.float64]]:
        """The power of all sessions together, kW."""
        return {"ev_kw": x[self.ev].sum(axis=0) if self.sessions else np.zeros(steps)}
