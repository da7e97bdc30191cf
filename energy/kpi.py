"""Energy KPIs of a park over any period: the one KPI engine (DOMAIN.md "KPI definitions").

The CLI (``parktwin kpi``), the JSON API (/api/kpi, /api/energy) and the
dashboard's pages all take their energy figures from :func:`energy_kpis`.

How energy is measured:

- every power point is put on one time-aligned grid of KPI intervals (the
  tariff's demand interval, 15 min): its time-weighted mean over the part of
  each interval with a known value, each reading holding no longer than its
  poll period (:mod:`energy.aligned`); that mean stands for the whole
  interval, and an interval with no known value counts 0 kWh;
- where a meter has an energy counter (grid import and export, building
  meters, PV arrays) its energy comes from the counter read at the interval
  bounds (:func:`twin.metering.counter_increments`), as a utility bills it;
  an interval whose bounds the counter does not span falls back to the power
  point on the grid;
- every figure carries its coverage: the share of the period it had data for.

Definitions (E = energy over the period; per interval unless said otherwise):

- consumption per load subsystem the asset kinds declare (``twin.subsystems``): chillers, lighting,
  elevators, EV; ``other`` = building meters minus those, never below 0;
  ``total`` = their sum;
- PV = E(PV AC output); grid import / export = E(positive / negative part of
  the grid meter); battery charge / discharge = E(negative / positive part of
  the battery power);
- PV export = min(export, PV) of each interval (what the battery sends to the
  grid is not PV);
- self-consumption = 1 - PV export / PV;
- self-sufficiency = 1 - grid import / consumption, where consumption is what
  the site used behind its grid meter: import + PV - PV export = the loads,
  plus what the battery kept (charge - discharge, losses included) and what
  it sent to the grid. Charging the battery from the grid is use; what it
  gives back later is not import. Cooling storage (ice or chilled water) needs
  no term: the chillers' electricity for charging it is a load, and
  discharging it lowers their later load. Both ratios stay within 0-1;
- peak demand: the highest mean grid import over one interval of the period,
  and when it began;
- load factor = grid import kWh / (peak demand kW x hours in the period);
- cost: import energy at the tariff's price (or day-ahead prices) by
  time-of-use period, minus export revenue (the export the tariff pays for at
  its export price); CO2 = import x the tariff's grid factor;
- demand charge: the billed demand of each billing month the period touches,
  month to date: the highest interval demand from the first of that month up
  to the period's end (or the month's end), at the tariff's rate per kW-month.
  It is a monthly charge and is not part of the period's cost;
- plant COP = chillers' cooling kWhth / chillers' electric kWh; kW/ton = 3.517 / COP;
- storage cooling delivered = E(every point playing ``Role.STORAGE_COOLING_DELIVERED``), kWhth: the
  cooling all cooling storage delivered to the buildings, net of what it took from their chilled-water
  loop to charge (e.g. an ice tank's melt x its melt effectiveness, a chilled-water tank's discharge -
  charge). With the chillers' direct cooling it makes the buildings' cooling load, as the forecasts and
  plans read it (``twin.subsystems.planning_loads_frame``); negative when storage took more from the
  loop than it gave back;
- ice used: ice melt = E(``Role.STORAGE_MELT``), the heat drawn from ice storage; ice cooling delivered
  = E(the ``Role.STORAGE_COOLING_DELIVERED`` points of the assets that melt), ice's part of storage
  cooling delivered, kWhth;
- flows: each interval's supply (import, PV, battery discharge) split over
  its uses (each load, battery charging, export) in proportion to their share
  of the interval's use; an allocation, not a measurement;
- savings = baseline cost - cost, when a baseline cost is given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from energy.aligned import COUNTED_QUALITIES, aligned_points, hold_limits_s, interval_bounds
from energy.tariff import Tariff
from twin.history import History
from twin.kinds.base import Role
from twin.metering import counter_increments
from twin.park import Park
from twin.subsystems import load_subsystem_names, power_points

KWH_PER_TON_HOUR = 3.517
"""Thermal kWh in one refrigeration ton-hour (DOMAIN.md); kW/ton = 3.517 / COP."""

KPI_INTERVAL_MIN = 15
"""KPI interval without a tariff (with one: its demand interval)."""

COUNTER_MARGIN = pd.Timedelta(hours=1)
"""How far beyond a period counter readings are read, to interpolate the counters at its bounds."""

FLOW_SOURCES = ("grid", "pv", "battery")


def load_names() -> list[str]:
    """Consumption subsystems, in display order: the load subsystems of the asset kinds, then "other"."""
    return [*load_subsystem_names(), "other"]


def flow_sinks() -> list[str]:
    """Where the energy flow goes, in display order: each consumption subsystem, battery charging, export."""
    return [*load_names(), "battery charge", "export"]


@dataclass(frozen=True)
class EnergyKpis:
    """Energy KPIs of one period (see the module docstring). kWh, kW, the tariff's currency; None where the
    inputs for a figure are missing (no tariff, no PV, no chillers...). ``coverage``: the share (0-1) of
    the period each figure had data for, by the figure's field name."""

    start_utc: datetime
    end_utc: datetime
    hours: float
    coverage: dict[str, float]
    consumption_kwh: dict[str, float]
    pv_kwh: float
    grid_import_kwh: float
    grid_export_kwh: float
    pv_export_kwh: float
    battery_charge_kwh: float
    battery_discharge_kwh: float
    self_consumption: float | None
    self_sufficiency: float | None
    peak_demand_kw: float | None
    peak_demand_start_utc: datetime | None
    load_factor: float | None
    energy_cost_by_period_cny: dict[str, float] | None
    export_revenue_cny: float | None
    cost_cny: float | None
    billed_demand_kw: float | None
    billed_demand_start_utc: datetime | None
    demand_charge_cny: float | None
    co2_t: float | None
    cooling_kwhth: float
    chillers_kwh: float
    plant_cop: float | None
    plant_kw_per_ton: float | None
    storage_cooling_delivered_kwhth: float
    ice_melt_kwhth: float
    ice_cooling_delivered_kwhth: float
    baseline_cost_cny: float | None
    savings_cny: float | None
    flows_kwh: dict[tuple[str, str], float]

    @property
    def known(self) -> bool:
        """Whether any figure had data in the period."""
        return any(share > 0 for share in self.coverage.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times ISO 8601 UTC, flows as a list of {source, target, kwh}, NaN never occurs."""
        data = asdict(self)
        for name in ("start_utc", "end_utc", "peak_demand_start_utc", "billed_demand_start_utc"):
            data[name] = None if data[name] is None else pd.Timestamp(data[name]).isoformat()
        data["flows_kwh"] = [{"source": s, "target": t, "kwh": kwh} for (s, t), kwh in self.flows_kwh.items()]
        return data


def counter_energy(history: History, counter_ids: list[str], bounds: pd.DatetimeIndex) -> pd.DataFrame:
    """Energy (kWh) each counter counted in each interval between consecutive ``bounds``, one column per
    counter, indexed by interval start; NaN where the counter's readings do not span the interval."""
    readings = history.query(counter_ids, bounds[0] - COUNTER_MARGIN, bounds[-1] + COUNTER_MARGIN)
    readings = readings[readings["quality"].isin(COUNTED_QUALITIES)]
    frame = pd.DataFrame(np.nan, index=bounds[:-1], columns=counter_ids)
    for pid, one in readings.groupby("point_id", sort=False):
        frame[pid] = counter_increments(pd.DatetimeIndex(one["ts_utc"]), one["value"].to_numpy(float), bounds)
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


@dataclass(frozen=True)
class _Figure:
    """One energy figure per KPI interval (kWh) and the share (0-1) of each interval it had data for."""

    kwh: np.ndarray
    coverage: np.ndarray

    def total(self) -> float:
        return float(np.sum(self.kwh))

    def share(self, hours: np.ndarray) -> float:
        """Coverage over the period: the hours with data over the period's hours."""
        return float(np.sum(self.coverage * hours) / np.sum(hours)) if np.sum(hours) > 0 else 0.0


class _KpiGrid:
    """Power points of a period on the KPI grid (:mod:`energy.aligned`), and the meters' counters."""

    def __init__(self, history: History, ids: list[str], bounds: pd.DatetimeIndex, hold_s: dict[str, float]):
        self.history, self.bounds = history, bounds
        self.aligned = aligned_points(history, ids, bounds, hold_s)
        self.hours = self.aligned.hours

    def power(self, pids: list[str], part: str = "all") -> _Figure:
        """Energy of the summed power of ``pids`` (``part``: "all", or only its "positive" or "negative"
        part, as a positive number); a point without a known value in an interval adds 0 there."""
        if not pids:
            return _Figure(np.zeros(len(self.hours)), np.zeros(len(self.hours)))
        kw = self.aligned.mean[pids].fillna(0.0).sum(axis=1).to_numpy()
        kw = np.clip(kw, 0.0, None) if part == "positive" else np.clip(-kw, 0.0, None) if part == "negative" else kw
        return _Figure(kw * self.hours, self.aligned.coverage[pids].mean(axis=1).to_numpy())

    def metered(self, meters: list[tuple[str, _Figure]]) -> _Figure:
        """Summed energy of meters given as (counter point, the meter's power figure): each interval from the
        counter where its readings span it, else from the power figure."""
        if not meters:
            return _Figure(np.zeros(len(self.hours)), np.zeros(len(self.hours)))
        counted = counter_energy(self.history, [counter for counter, _ in meters], self.bounds)
        kwh, coverage = np.zeros(len(self.hours)), np.zeros(len(self.hours))
        for counter, power in meters:
            increments = counted[counter].to_numpy()
            kwh += np.where(np.isnan(increments), power.kwh, increments)
            coverage += np.where(np.isnan(increments), power.coverage, 1.0)
        return _Figure(kwh, coverage / len(meters))


def _grid_energy(grid: _KpiGrid, park: Park) -> tuple[_Figure, _Figure]:
    """Grid import and export on the grid: the grid meter's counters, its power point where they lack."""
    power = park.role_points(Role.GRID_POWER)[:1]
    imports = [(counter, grid.power(power, "positive")) for counter in park.role_points(Role.GRID_IMPORT_COUNTER)[:1]]
    exports = [(counter, grid.power(power, "negative")) for counter in park.role_points(Role.GRID_EXPORT_COUNTER)[:1]]
    return grid.metered(imports), grid.metered(exports)


def _month_start_utc(t: datetime, timezone_name: str) -> datetime:
    """The first instant of the park-local calendar month holding instant ``t``."""
    local = pd.Timestamp(t).tz_convert(timezone_name)
    first = datetime.combine(local.date().replace(day=1), time.min, tzinfo=ZoneInfo(timezone_name))
    return first.astimezone(UTC)


def _month_to_date_demand(history: History, park: Park, tariff: Tariff, start: datetime, end: datetime,
                          hold_s: dict[str, float]) -> pd.DataFrame:
    """Billed demand of each billing month [start, end) touches, from its first day up to ``end``
    (:meth:`Tariff.demand_charges` on the grid meter's import per demand interval)."""
    bounds = interval_bounds(_month_start_utc(start, park.site.timezone), end, tariff.demand_interval_min * 60)
    grid = _KpiGrid(history, park.role_points(Role.GRID_POWER)[:1], bounds, hold_s)
    imported, _ = _grid_energy(grid, park)
    return tariff.demand_charges(pd.Series(imported.kwh / grid.hours, index=bounds[:-1]))


def _flows(supply: dict[str, np.ndarray], use: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
    """Each interval's supply split over its uses in proportion to their share of the interval's use (kWh)."""
    use_total = np.sum(list(use.values()), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = {sink: np.where(use_total > 0, kwh / use_total, 0.0) for sink, kwh in use.items()}
    flows = {(source, sink): float(np.sum(supply[source] * shares[sink])) for source in FLOW_SOURCES
             for sink in flow_sinks()}
    return {pair: kwh for pair, kwh in flows.items() if kwh > 0}


def energy_kpis(history: History, park: Park, start: datetime, end: datetime, tariff: Tariff | None = None,
                prices_cny_per_kwh: pd.Series | None = None, baseline_cost_cny: float | None = None,
                hold_s: dict[str, float] | None = None) -> EnergyKpis:
    """Energy KPIs of the park over [start, end) from its history (module docstring).

    ``prices_cny_per_kwh``: day-ahead import prices on a UTC index (each the
    price until the next), used instead of the tariff's energy prices; the
    tariff still gives periods, demand charge, export price and CO2 factor.
    ``hold_s``: how long each point's reading holds (:func:`energy.aligned.hold_limits_s`; default: the
    park's simulation step for every point).
    """
    hold_s = hold_s if hold_s is not None else hold_limits_s(park)
    interval_min = tariff.demand_interval_min if tariff else KPI_INTERVAL_MIN
    bounds = interval_bounds(start, end, interval_min * 60)
    groups = power_points(park)
    chillers_cooling = park.role_points(Role.CHILLER_COOLING)
    storage_cooling = park.role_points(Role.STORAGE_COOLING_DELIVERED)
    melt = park.role_points(Role.STORAGE_MELT)
    ice_cooling = [cooling for _, cooling in park.role_point_pairs(Role.STORAGE_MELT, Role.STORAGE_COOLING_DELIVERED)]
    ids = [pid for pids in groups.values() for pid in pids]
    grid = _KpiGrid(history, ids + chillers_cooling + storage_cooling + melt, bounds, hold_s)
    hours = grid.hours

    loads = {name: grid.power(groups[name]) for name in load_subsystem_names()}
    building_meters = park.role_point_pairs(Role.BUILDING_IMPORT_COUNTER, Role.BUILDING_POWER)
    building = grid.metered([(counter, grid.power([power])) for counter, power in building_meters])
    subsystems_kwh = np.sum([figure.kwh for figure in loads.values()], axis=0)
    loads["other"] = _Figure(np.clip(building.kwh - subsystems_kwh, 0.0, None), building.coverage)
    consumption = {name: figure.total() for name, figure in loads.items()}
    consumption["total"] = sum(consumption.values())
    pv_arrays = park.role_point_pairs(Role.PV_ENERGY_COUNTER, Role.PV_POWER)
    pv = grid.metered([(counter, grid.power([power])) for counter, power in pv_arrays])
    imported, exported = _grid_energy(grid, park)
    charge, discharge = grid.power(groups["battery"], "negative"), grid.power(groups["battery"], "positive")
    pv_export_kwh = np.minimum(exported.kwh, pv.kwh)
    import_kwh, export_kwh, pv_kwh = imported.total(), exported.total(), pv.total()
    site_use_kwh = import_kwh + pv_kwh - float(np.sum(pv_export_kwh))  # the loads and what the battery kept
    cooling, chillers_kwh = grid.power(chillers_cooling), grid.power(park.role_points(Role.CHILLER_POWER)).total()
    from_storage, ice_melt, from_ice = grid.power(storage_cooling), grid.power(melt), grid.power(ice_cooling)
    plant_cop = cooling.total() / chillers_kwh if chillers_kwh > 0 else None

    demand_kw = imported.kwh / hours
    best = int(np.argmax(demand_kw)) if len(demand_kw) and imported.share(hours) > 0 else None
    peak_kw = float(demand_kw[best]) if best is not None else None
    cost_by_period = export_revenue = cost = co2_t = None
    billed_kw = billed_start = demand_charge = None
    if tariff is not None and best is not None:
        index = pd.DatetimeIndex(bounds[:-1])
        energy_cny = imported.kwh * _import_price(tariff, prices_cny_per_kwh, index)
        periods = tariff.period_names(index).to_numpy()
        cost_by_period = {str(name): float(energy_cny[periods == name].sum()) for name in pd.unique(periods)}
        paid_kwh = tariff.paid_export_kw(exported.kwh / hours, pv.kwh / hours if pv_arrays else
                                         np.full(len(hours), np.inf)) * hours
        export_revenue = float(paid_kwh.sum()) * tariff.export_price_cny_per_kwh
        cost = sum(cost_by_period.values()) - export_revenue
        co2_t = import_kwh * tariff.co2_t_per_mwh / 1000.0
        charges = _month_to_date_demand(history, park, tariff, start, end, hold_s)
        billed_kw = float(charges["peak_demand_kw"].iloc[-1])
        billed_start = pd.Timestamp(charges["peak_start_utc"].iloc[-1]).to_pydatetime()
        demand_charge = float(charges["charge_cny"].sum())

    supply = {"grid": imported.kwh, "pv": pv.kwh, "battery": discharge.kwh}
    use = {**{name: loads[name].kwh for name in load_names()}, "battery charge": charge.kwh, "export": exported.kwh}
    load_coverage = {name: figure.share(hours) for name, figure in loads.items()}
    coverage = {
        "consumption_kwh": building.share(hours) if building_meters else
        float(np.mean(list(load_coverage.values()))),
        **{f"consumption_kwh.{name}": share for name, share in load_coverage.items()},
        "pv_kwh": pv.share(hours), "grid_import_kwh": imported.share(hours),
        "grid_export_kwh": exported.share(hours), "battery_kwh": charge.share(hours),
        "cooling_kwhth": cooling.share(hours), "storage_cooling_delivered_kwhth": from_storage.share(hours),
        "ice_melt_kwhth": ice_melt.share(hours), "ice_cooling_delivered_kwhth": from_ice.share(hours),
    }
    hours_total = float(np.sum(hours))
    return EnergyKpis(
        start_utc=start, end_utc=end, hours=hours_total, coverage=coverage, consumption_kwh=consumption,
        pv_kwh=pv_kwh, grid_import_kwh=import_kwh, grid_export_kwh=export_kwh,
        pv_export_kwh=float(np.sum(pv_export_kwh)), battery_charge_kwh=charge.total(),
        battery_discharge_kwh=discharge.total(),
        self_consumption=1.0 - float(np.sum(pv_export_kwh)) / pv_kwh if pv_kwh > 0 else None,
        self_sufficiency=1.0 - import_kwh / site_use_kwh if site_use_kwh > 0 else None,
        peak_demand_kw=peak_kw,
        peak_demand_start_utc=bounds[best].to_pydatetime() if best is not None else None,
        load_factor=import_kwh / (peak_kw * hours_total) if peak_kw else None,
        energy_cost_by_period_cny=cost_by_period, export_revenue_cny=export_revenue, cost_cny=cost,
        billed_demand_kw=billed_kw, billed_demand_start_utc=billed_start, demand_charge_cny=demand_charge,
        co2_t=co2_t, cooling_kwhth=cooling.total(), chillers_kwh=chillers_kwh,
        plant_cop=plant_cop, plant_kw_per_ton=KWH_PER_TON_HOUR / plant_cop if plant_cop else None,
        storage_cooling_delivered_kwhth=from_storage.total(), ice_melt_kwhth=ice_melt.total(),
        ice_cooling_delivered_kwhth=from_ice.total(),
        baseline_cost_cny=baseline_cost_cny,
        savings_cny=baseline_cost_cny - cost if baseline_cost_cny is not None and cost is not None else None,
        flows_kwh=_flows(supply, use),
    )
