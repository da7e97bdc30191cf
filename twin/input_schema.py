"""Building blocks of every input file's schema (park, point maps, tariff, faults, thresholds, users).

A number in an input file is a limit, a capacity, a price, a scale or a magnitude: NaN or
infinity is never a meaningful value for any of them (``.inf`` as a chiller capacity, ``.nan`` as
a point's scale), so every input model refuses them, and unknown fields, through
:class:`InputModel`. The constrained float types refuse them on their own as well, so a model that
cannot derive from :class:`InputModel` stays safe when it uses them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

INPUT_YEARS = (1900, 2199)
"""Years any time in an input (a file or a command-line option) may fall in: the simulated and planned
park's; pandas' nanosecond timestamps end in 1677 and 2262, and converting year 1 or 9999 between
time zones overflows."""

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""Any finite number (NaN, +inf and -inf refused)."""

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class InputModel(BaseModel):
    """A model read from an input file: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
