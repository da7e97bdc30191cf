"""The PV arrays' LP block: the PV power the park uses, one column per step for all its arrays together.

Column: ``pv_used[t]`` (kW, at most the forecast of the park's arrays, ``pv_available_kw``; what is
left of the forecast is curtailed). It supplies the electric balance, and is what the park can export
where the tariff limits export to the PV.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from optimizer.blocks.base import Assembly, KindBlock, Term
from optimizer.inputs import HorizonInputs
from optimizer.linear_program import Labels


class PVArrayBlock(KindBlock):
    kind = "pv_array"
    primary_columns = ("pv_used_kw",)

    def export_max_kw(self, inputs: HorizonInputs) -> np.ndarray:
        return inputs.column("pv_available_kw")

    def variables(self, lp: Assembly) -> None:
        self.pv_used = lp.builder.variables("pv_used_kw", (lp.step_count,), 0.0, lp.inputs.column("pv_available_kw"),
                                            labels=Labels.of("pv_used_kw", None, lp.steps))

    def electric_terms(self, lp: Assembly) -> list[Term]:
        return [(self.pv_used, 1.0)]

    def export_source_terms(self, lp: Assembly, steps: NDArray[np.bool_]) -> list[Term]:
        return [(self.pv_used[steps], -1.0)]
