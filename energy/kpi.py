"""Energy KPIs of a park over any period, from its history (DOMAIN.md "KPI definitions").

Grid import and export, and PV production when every array has its energy
counter, come from the meters' own counters (:func:`metered_energy`), read at
each demand interval's bounds, as a utility bills them; so do the energy cost,
the demand charge and the export credit. Without counters spanning the period,
and for every other figure, each power reading is taken as the mean power from
its timestamp to the next reading (the simulator's and most meters'
convention); the last reading of the period lasts one median step. Energy is
the sum of power x duration. A point
with no known value at a time counts as 0 kW there; ``coverage`` says what
share of the expected values were known.

Definitions (E = energy over the period):

- consumption per subsystem (``twin.subsystems``): chillers, lighting,
  elevators, EV; ``other`` = building sub-meters minus those, never below 0
  at any time; ``total`` = their sum;
- ``pv_kwh`` = E(PV AC output); grid import / export = E(positive / negative
  part of the grid meter);
- self-consumption = 1 - export / PV; self-sufficiency = 1 - import / consumption;
- peak demand: the highest mean grid import over a tariff demand interval
  (15 min) of the local clock, and when it began (:meth:`Tariff.demand_charges`);
- load factor = grid import kWh / (peak demand kW x hours in the period);
- cost: import energy at the tariff's price (or day-ahead prices) by
  time-of-use period, plus the demand charge of each billing month touched,
  minus export at the export price; CO2 = import x the tariff's grid factor;
- plant COP = chillers' cooling kWhth / chillers' electric kWh; kW/ton = 3.517 / COP;
- ice used = heat drawn from the ice tank (melt, kWhth) and the cooling it delivered;
- savings = baseline cost - cost, when a baseline cost is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from energy.tariff import Tariff
from twin.assets import Chiller, IceTank, Meter, PVArray
from twin.history import History
from twin.metering import counter_increments, held_power_energy
from twin.park import Park
from twin.points import point_id
from twin.readings import Quality
from twin.subsystems import LOAD_SUBSYSTEMS, power_points

KWH_PER_TON_HOUR = 3.517
"""Thermal kWh in one refrigeration ton-hour (DOMAIN.md); kW/ton = 3.517 / COP."""


@dataclass(frozen=True)
class EnergyKpis:
    """Energy KPIs of one period (see the module docstring). Costs in the tariff's currency; None where
    the inputs for a figure are missing (no tariff, no PV, no chillers...)."""

    start_utc: datetime
    end_utc: datetime
    hours: float
    coverage: float
    consumption_kwh: dict[str, float]
    pv_kwh: float
    grid_import_kwh: float
    grid_export_kwh: float
    self_consumption: float | None
    self_sufficiency: float | None
    peak_demand_kw: float | None
    peak_demand_start_utc: datetime | None
    load_factor: float | None
    energy_cost_by_period_cny: dict[str, float] | None
    demand_charge_cny: float | None
    export_credit_cny: float | None
    total_cost_cny: float | None
    co2_t: float | None
    cooling_kwhth: float
    chillers_kwh: float
    plant_cop: float | None
    plant_kw_per_ton: float | None
    ice_melt_kwhth: float
    ice_cooling_delivered_kwhth: float
    baseline_cost_cny: float | None
    savings_cny: float | None

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("start_utc", "end_utc", "peak_demand_start_utc"):
            data[name] = None if data[name] is None else pd.Timestamp(data[name]).isoformat()
        return data


def step_hours(index: pd.DatetimeIndex) -> np.ndarray:
    """Hours each reading lasts: until the next one; the last one a median step."""
    if len(index) == 0:
        return np.zeros(0)
    seconds = pd.Series(index).diff().dt.total_seconds().to_numpy()[1:]
    last = np.median(seconds) if len(seconds) else 0.0
    return np.append(seconds, last) / 3600.0


COUNTER_MARGIN = pd.Timedelta(hours=1)
"""How far beyond a period counter readings are read, to interpolate the counters at its bounds."""


def metered_energy(history: History, park: Park, start: datetime, end: datetime,
                   interval_min: int) -> pd.DataFrame | None:
    """Energy per interval from the meters' own counters (twin.metering): ``import_kwh`` and ``export_kwh``
    of the grid meter and, when every PV array's energy counter spans the period, ``pv_kwh``, over
    [start, end) cut at every ``interval_min`` of the clock (the first and last interval may be partial);
    indexed by interval start, with ``hours`` the interval's length and ``estimated`` True where the grid
    counters had no reading at a bound (the grid meter's power readings, each held until the next, stand
    in there). None when the grid meter has no counter reading in the period (energy then comes from
    power readings)."""
    grid = next(((b.id, m.id) for b, m in park.iter_assets() if isinstance(m, Meter) and m.measures == "grid"), None)
    if grid is None:
        return None
    pv = [point_id(b.id, a.id, "energy_kwh") for b, a in park.iter_assets() if isinstance(a, PVArray)]
    counters = {"import_kwh": [point_id(*grid, "import_energy_kwh")],
                "export_kwh": [point_id(*grid, "export_energy_kwh")], "pv_kwh": pv}
    power = point_id(*grid, "power_kw")
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    inner = pd.date_range(start_ts.ceil(f"{interval_min}min"), end_ts, freq=f"{interval_min}min", inclusive="left")
    bounds = pd.DatetimeIndex([start_ts]).append(inner[inner > start_ts]).append(pd.DatetimeIndex([end_ts]))
    readings = history.query([pid for ids in counters.values() for pid in ids] + [power],
                             start_ts - COUNTER_MARGIN, end_ts + COUNTER_MARGIN)
    readings = readings[readings["quality"].isin([int(Quality.GOOD), int(Quality.STALE)])]
    by_point = {pid: one for pid, one in readings.groupby("point_id")}

    def increments(pid: str) -> np.ndarray:
        one = by_point.get(pid)
        return np.full(len(bounds) - 1, np.nan) if one is None else \
            counter_increments(pd.DatetimeIndex(one["ts_utc"]), one["value"].to_numpy(float), bounds)

    frame = pd.DataFrame(index=bounds[:-1])
    frame["hours"] = (bounds[1:] - bounds[:-1]) / pd.Timedelta(hours=1)
    grid_kwh = {column: increments(counters[column][0]) for column in ("import_kwh", "export_kwh")}
    if all(np.isnan(kwh).all() for kwh in grid_kwh.values()):
        return None
    estimated = np.isnan(grid_kwh["import_kwh"]) | np.isnan(grid_kwh["export_kwh"])
    if estimated.any():
        held = by_point.get(power)
        times = pd.DatetimeIndex(held["ts_utc"]) if held is not None else pd.DatetimeIndex([], tz="UTC")
        grid_kw = held["value"].to_numpy(float) if held is not None else np.zeros(0)
        for column, kw in (("import_kwh", np.clip(grid_kw, 0.0, None)), ("export_kwh", np.clip(-grid_kw, 0.0, None))):
            grid_kwh[column] = np.where(estimated, held_power_energy(times, kw, bounds), grid_kwh[column])
    frame["import_kwh"], frame["export_kwh"], frame["estimated"] = grid_kwh["import_kwh"], grid_kwh["export_kwh"], estimated
    pv_kwh = [increments(pid) for pid in pv]
    if pv and not any(np.isnan(kwh).any() for kwh in pv_kwh):
        frame["pv_kwh"] = np.sum(pv_kwh, axis=0)
    return frame


def _import_price(tariff: Tariff, prices_cny_per_kwh: pd.Series | None, index: pd.DatetimeIndex) -> np.ndarray:
    """Import price at each time: day-ahead prices (each the price until the next) when given, which must
    cover every time, else the tariff's."""
    if prices_cny_per_kwh is None:
        return tariff.energy_price_cny_per_kwh(index).to_numpy()
    step = prices_cny_per_kwh.index.to_series().diff().min() if len(prices_cny_per_kwh) > 1 else pd.Timedelta(hours=1)
    price = prices_cny_per_kwh.reindex(index, method="ffill").to_numpy(dtype=float)
    if np.isnan(price).any() or index[-1] >= prices_cny_per_kwh.index[-1] + step:
        raise ValueError(f"day-ahead prices {prices_cny_per_kwh.index[0]} .. {prices_cny_per_kwh.index[-1]} "
                         f"do not cover the period {index[0]} .. {index[-1]}")
    return price


def _metered_costs(metered: pd.DataFrame, tariff: Tariff, prices_cny_per_kwh: pd.Series | None):
    """Energy cost by tariff period, the demand charges (Tariff.demand_charges) and the export credit
    of metered interval energy."""
    index = pd.DatetimeIndex(metered.index)
    price = _import_price(tariff, prices_cny_per_kwh, index)
    periods = tariff.period_names(index).to_numpy()
    energy_cny = metered["import_kwh"].to_numpy() * price
    cost_by_period = {str(name): float(energy_cny[periods == name].sum()) for name in pd.unique(periods)}
    hours = metered["hours"].to_numpy()
    charges = tariff.demand_charges(pd.Series(metered["import_kwh"].to_numpy() / hours, index=index))
    pv_kw = metered["pv_kwh"].to_numpy() / hours if "pv_kwh" in metered else np.full(len(index), np.inf)
    paid_kwh = tariff.paid_export_kw(metered["export_kwh"].to_numpy() / hours, pv_kw) * hours
    return cost_by_period, charges, float(paid_kwh.sum()) * tariff.export_price_cny_per_kwh


def energy_kpis(history: History, park: Park, start: datetime, end: datetime, tariff: Tariff | None = None,
                prices_cny_per_kwh: pd.Series | None = None, baseline_cost_cny: float | None = None) -> EnergyKpis:
    """Energy KPIs of the park over [start, end) from its history.

    ``prices_cny_per_kwh``: day-ahead import prices on a UTC index (each the
    price until the next), used instead of the tariff's energy prices; the
    tariff still gives periods, demand charge, export price and CO2 factor.
    """
    groups = power_points(park)
    chillers = [point_id(b.id, c.id, "cooling_kwth") for b, c in park.iter_assets() if isinstance(c, Chiller)]
    tanks = [(b.id, t.id) for b, t in park.iter_assets() if isinstance(t, IceTank)]
    melt = [point_id(b, t, "melt_kwth") for b, t in tanks]
    ice_cooling = [point_id(b, t, "cooling_delivered_kwth") for b, t in tanks]
    ids = [pid for name in (*LOAD_SUBSYSTEMS, "building_meters", "pv", "grid") for pid in groups[name]]
    ids += chillers + melt + ice_cooling
    wide = history.query_wide(ids, start, end)
    hours = (end - start).total_seconds() / 3600.0
    dt_h = step_hours(wide.index)
    coverage = float(wide.notna().to_numpy().mean()) if wide.size else 0.0
    power = wide.fillna(0.0)

    def total_kw(pids: list[str]) -> np.ndarray:
        return power[pids].sum(axis=1).to_numpy() if pids else np.zeros(len(power))

    def kwh(kw: np.ndarray) -> float:
        return float(np.sum(kw * dt_h))

    loads_kw = {name: total_kw(groups[name]) for name in LOAD_SUBSYSTEMS}
    loads_kw["other"] = np.maximum(0.0, total_kw(groups["building_meters"]) - sum(loads_kw.values()))
    consumption = {name: kwh(kw) for name, kw in loads_kw.items()}
    consumption["total"] = sum(consumption.values())
    grid_kw = total_kw(groups["grid"])
    import_kw, export_kw = np.clip(grid_kw, 0.0, None), np.clip(-grid_kw, 0.0, None)
    pv_kw = total_kw(groups["pv"])
    pv_kwh, import_kwh, export_kwh = kwh(pv_kw), kwh(import_kw), kwh(export_kw)
    cooling_kwhth = kwh(total_kw(chillers))
    chillers_kwh = consumption["chillers"]
    plant_cop = cooling_kwhth / chillers_kwh if chillers_kwh > 0 else None

    metered = metered_energy(history, park, start, end, tariff.demand_interval_min if tariff else 15)
    if metered is not None:
        import_kwh, export_kwh = float(metered["import_kwh"].sum()), float(metered["export_kwh"].sum())
        if "pv_kwh" in metered:
            pv_kwh = float(metered["pv_kwh"].sum())
    peak_kw = peak_start = load_factor = None
    cost_by_period = demand_charge = export_credit = total_cost = co2_t = None
    if tariff is not None and metered is not None:
        cost_by_period, charges, export_credit = _metered_costs(metered, tariff, prices_cny_per_kwh)
    elif tariff is not None and len(power):
        import_kwh_each = import_kw * dt_h
        price = _import_price(tariff, prices_cny_per_kwh, pd.DatetimeIndex(power.index))
        periods = tariff.period_names(power.index).to_numpy()
        cost_by_period = {str(name): float(np.sum((import_kwh_each * price)[periods == name]))
                          for name in pd.unique(periods)}
        charges = tariff.demand_charges(pd.Series(grid_kw, index=power.index))
        export_credit = kwh(tariff.paid_export_kw(export_kw, pv_kw)) * tariff.export_price_cny_per_kwh
    if cost_by_period is not None:
        best = charges["peak_demand_kw"].idxmax()
        peak_kw = float(charges.loc[best, "peak_demand_kw"])
        peak_start = pd.Timestamp(charges.loc[best, "peak_start_utc"]).to_pydatetime()
        demand_charge = float(charges["charge_cny"].sum())
        total_cost = sum(cost_by_period.values()) + demand_charge - export_credit
        co2_t = import_kwh * tariff.co2_t_per_mwh / 1000.0
        load_factor = import_kwh / (peak_kw * hours) if peak_kw > 0 else None

    return EnergyKpis(
        start_utc=start, end_utc=end, hours=hours, coverage=coverage, consumption_kwh=consumption,
        pv_kwh=pv_kwh, grid_import_kwh=import_kwh, grid_export_kwh=export_kwh,
        self_consumption=1.0 - export_kwh / pv_kwh if pv_kwh > 0 else None,
        self_sufficiency=1.0 - import_kwh / consumption["total"] if consumption["total"] > 0 else None,
        peak_demand_kw=peak_kw, peak_demand_start_utc=peak_start, load_factor=load_factor,
        energy_cost_by_period_cny=cost_by_period, demand_charge_cny=demand_charge, export_credit_cny=export_credit,
        total_cost_cny=total_cost, co2_t=co2_t, cooling_kwhth=cooling_kwhth, chillers_kwh=chillers_kwh,
        plant_cop=plant_cop, plant_kw_per_ton=KWH_PER_TON_HOUR / plant_cop if plant_cop else None,
        ice_melt_kwhth=kwh(total_kw(melt)), ice_cooling_delivered_kwhth=kwh(total_kw(ice_cooling)),
        baseline_cost_cny=baseline_cost_cny,
        savings_cny=baseline_cost_cny - total_cost if baseline_cost_cny is not None and total_cost is not None
        else None,
    )
