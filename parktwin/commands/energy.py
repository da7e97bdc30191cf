"""Energy commands over a park's history: `forecast` (PV and loads), `kpi` (energy KPIs) and `faults` (fault
detection, fault and alarm-system KPIs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from parktwin.options import (
    FromOption,
    HistoryOption,
    JsonFlag,
    ParkFile,
    RecordedSpeedOption,
    ToOption,
    parse_local_time,
    parse_period,
)
from parktwin.park_files import history_url, open_history, park_point_maps_if_any
from parktwin.terminal import EXIT_FAILURE, BadInput, console, errors, local_minute, print_json
from twin.config import load_park
from twin.park import Park

commands = typer.Typer()


def recorded_speed(store, given: float | None, start: datetime | None = None, end: datetime | None = None) -> float:
    """The speed of the runs that wrote the history in [start, end) (:data:`RecordedSpeedOption`): ``given``
    when given, else the speed they recorded, 1 when none did. Of several, the fastest: its readings come
    furthest apart in twin time, and a shorter hold would leave them gaps (noted on stderr)."""
    from twin.history.runs import run_speeds

    if given is not None:
        return given
    speeds = run_speeds(store, start, end)
    if len(speeds) > 1:
        errors.print(f"note: runs at {', '.join(f'{s:g}x' for s in speeds)} wrote this history; readings hold as "
                     f"at {speeds[-1]:g}x (--speed chooses)", highlight=False)
    return speeds[-1] if speeds else 1.0


def hold_limits(park: Park, device_maps: list, time_scale: float) -> dict[str, float]:
    """How long each point's reading holds in the KPI engine (energy.aligned.hold_limits_s): its point map's
    poll period times ``time_scale`` (simulated seconds per wall second of the run that recorded it)."""
    from energy.aligned import hold_limits_s

    return hold_limits_s(park, {pid: device.poll_period_s for device in device_maps for pid in device.point_ids},
                         time_scale)


@commands.command()
def forecast(
    park_file: ParkFile,
    start: Annotated[str, typer.Option(help="First hour, YYYY-MM-DDTHH:MM in the park's time zone")],
    hours: Annotated[int, typer.Option(min=1, max=24 * 31, help="Number of hours")] = 24,
    weather: Annotated[Path | None, typer.Option(
        help="Weather CSV (time, ghi[, dni, dhi], temp_air[, wind_speed])")] = None,
    history: HistoryOption = None,
    annual_tmy: Annotated[Path | None, typer.Option(
        "--annual-tmy", help="Also report each array's annual AC energy over this TMY3 file's year")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Forecast PV per array and loads per subsystem, hour by hour."""
    import pandas as pd

    from energy.forecast import (
        FORECAST_COLUMNS,
        HistoryForecaster,
        HistoryLoadSource,
        LoadForecaster,
        annual_pv_energy_kwh,
        forecast_weather,
        hourly_load_history,
        pv_forecast_kw,
    )
    from energy.weather import read_weather_csv
    from energy.weather_forecast import CsvWeatherForecast

    park = load_park(park_file)
    start_utc = parse_local_time(start, "--start", park)
    notes: list[str] = []
    frame = None
    if weather is not None:
        if not weather.is_file():
            raise BadInput(f"--weather: file not found: {weather}")
        site = park.site
        frame, notes = read_weather_csv(weather, site.latitude_deg, site.longitude_deg, site.altitude_m,
                                        tz=site.timezone)
    try:
        horizon_weather = forecast_weather(park, start_utc, hours, frame)
    except ValueError as exc:
        raise BadInput(f"--weather {weather}: {exc}") from None
    index = pd.date_range(start_utc, periods=hours, freq="1h", name="ts_utc")
    pv_kw = pv_forecast_kw(park, horizon_weather, index)
    hourly_weather = horizon_weather.resample("1h").mean().reindex(index)
    with open_history(history_url(park, history)) as store:
        try:
            learned = hourly_load_history(store, park, start_utc - timedelta(days=28), start_utc)
        except ValueError as exc:  # no weather station to learn from
            notes.append(f"loads: {exc}; fallback profile used")
            learned = pd.DataFrame()
    model = LoadForecaster.fit(park, learned)
    loads = model.predict(index, hourly_weather["temp_air_c"].to_numpy(), hourly_weather["ghi_wm2"].to_numpy())
    with open_history(history_url(park, history)) as store:
        planner = HistoryForecaster(park, HistoryLoadSource(store, park),
                                    weather=CsvWeatherForecast(park, weather) if weather is not None else None)
        plan_inputs = planner.forecast(start_utc, hours, pd.Timedelta(hours=1))
    plan_source = f"file {weather}" if weather is not None else park.weather_forecast.source
    annual = None
    annual_kwh: dict[str, float] = {}  # per array
    if annual_tmy is not None:
        if not annual_tmy.is_file():
            raise BadInput(f"--annual-tmy: file not found: {annual_tmy}")
        try:
            annual_kwh = annual_pv_energy_kwh(park, annual_tmy)
        except (ValueError, KeyError, IndexError) as exc:
            raise BadInput(f"--annual-tmy {annual_tmy}: not a readable TMY3 file ({exc})") from None
        annual = {"file": str(annual_tmy), "arrays_kwh": annual_kwh, "total_kwh": sum(annual_kwh.values())}
    if json_output:
        print_json({
            "start_utc": start_utc.isoformat(), "hours": hours, "times_utc": [t.isoformat() for t in index],
            "pv_kw": {a: pv_kw[a].round(3).tolist() for a in pv_kw.columns},
            "pv_energy_kwh": {a: round(float(pv_kw[a].sum()), 3) for a in pv_kw.columns},
            "loads": {name: loads[name].round(3).tolist() for name in loads.columns},
            "load_method": model.method, "load_trained_hours": model.trained_hours,
            "weather": "file " + str(weather) if weather else park.weather.source, "weather_notes": notes,
            "pv_annual_tmy": annual,
            "plan_inputs": {"weather_forecast": plan_source, "load_method": planner.method,
                            **{name: plan_inputs[name].round(3).tolist() for name in FORECAST_COLUMNS}},
        })
        return
    table = Table(title=f"{park.name}: forecast from {local_minute(start_utc, park)} ({park.site.timezone}), "
                        f"loads by {model.method}")
    for column in ["hour", *pv_kw.columns, "pv total kW", *loads.columns]:
        table.add_column(column, justify="right")
    for ts in index:
        pv_row, load_row = pv_kw.loc[ts], loads.loc[ts]
        table.add_row(local_minute(ts, park), *(f"{pv_row[a]:,.1f}" for a in pv_kw.columns),
                      f"{pv_row.sum():,.1f}", *(f"{load_row[n]:,.1f}" for n in loads.columns))
    console.print(table)
    for note in notes:
        console.print(f"note: {note}")
    console.print(f"plan inputs (weather forecast: {plan_source}, loads by {planner.method}): "
                  f"cooling {plan_inputs['cooling_load_kwth'].sum():,.0f} kWhth, other loads "
                  f"{plan_inputs['other_load_kw'].sum():,.0f} kWh, PV {plan_inputs['pv_available_kw'].sum():,.0f} kWh")
    if annual_tmy is not None:
        per_array = ", ".join(f"{a} {kwh:,.0f} kWh" for a, kwh in annual_kwh.items())
        console.print(f"annual AC energy over {annual_tmy.name}: {per_array}; "
                      f"total {sum(annual_kwh.values()):,.0f} kWh")


@commands.command()
def kpi(
    park_file: ParkFile,
    from_: FromOption,
    to: ToOption,
    history: HistoryOption = None,
    prices: Annotated[Path | None, typer.Option(
        help="Day-ahead price CSV used instead of the tariff's energy prices")] = None,
    baseline_cost: Annotated[float | None, typer.Option(
        help="Baseline cost of the same period, for savings")] = None,
    speed: RecordedSpeedOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Energy KPIs of a period from history (the KPI engine the dashboard uses): consumption, PV, grid,
    self-sufficiency, peak demand, energy cost, month-to-date demand charge, CO2, plant COP, cooling from storage
    and ice; each energy figure with its coverage."""
    from energy.kpi import energy_kpis
    from energy.prices import load_price_csv
    from energy.tariff import load_tariff

    park = load_park(park_file)
    start, end = parse_period(park, from_, to)
    tariff = load_tariff(park.tariff) if park.tariff else None
    price_series = load_price_csv(prices, park.site.timezone) if prices else None
    device_maps = park_point_maps_if_any(park)
    with open_history(history_url(park, history)) as store:
        hold_s = hold_limits(park, device_maps, recorded_speed(store, speed, start, end))
        try:
            kpis = energy_kpis(store, park, start, end, tariff, price_series, baseline_cost, hold_s)
        except ValueError as exc:
            raise BadInput(f"--prices {prices}: {exc}") from None
    if not kpis.known:
        errors.print(f"[red]error:[/red] no readings in {history_url(park, history)} from {from_} to {to}")
        raise typer.Exit(EXIT_FAILURE)
    if json_output:
        print_json(kpis.as_dict())
        return
    table = Table(title=f"{park.name}: energy KPIs {local_minute(start, park)} to {local_minute(end, park)}")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("coverage", justify="right")
    cover = kpis.coverage
    for name, kwh in kpis.consumption_kwh.items():
        table.add_row(f"consumption {name}", f"{kwh:,.0f} kWh",
                      f"{cover['consumption_kwh' if name == 'total' else f'consumption_kwh.{name}']:.1%}")
    rows: list[tuple[str, float | None, str, str | None]] = [
        ("PV production", kpis.pv_kwh, "{:,.0f} kWh", "pv_kwh"),
        ("grid import", kpis.grid_import_kwh, "{:,.0f} kWh", "grid_import_kwh"),
        ("grid export", kpis.grid_export_kwh, "{:,.0f} kWh", "grid_export_kwh"),
        ("battery charge", kpis.battery_charge_kwh, "{:,.0f} kWh", "battery_kwh"),
        ("battery discharge", kpis.battery_discharge_kwh, "{:,.0f} kWh", "battery_kwh"),
        ("self-consumption", kpis.self_consumption, "{:.1%}", None),
        ("self-sufficiency", kpis.self_sufficiency, "{:.1%}", None),
        ("peak demand (15 min)", kpis.peak_demand_kw, "{:,.0f} kW", "grid_import_kwh"),
        ("load factor", kpis.load_factor, "{:.3f}", None)]
    rows += [(f"energy cost {p}", c, "{:,.0f} CNY", "grid_import_kwh")
             for p, c in (kpis.energy_cost_by_period_cny or {}).items()]
    rows += [("export revenue", kpis.export_revenue_cny, "{:,.0f} CNY", "grid_export_kwh"),
             ("energy cost, net of export", kpis.cost_cny, "{:,.0f} CNY", "grid_import_kwh"),
             ("billed demand, month to date", kpis.billed_demand_kw, "{:,.0f} kW", None),
             ("demand charge, month to date", kpis.demand_charge_cny, "{:,.0f} CNY", None),
             ("CO2", kpis.co2_t, "{:,.1f} t", "grid_import_kwh"),
             ("plant COP", kpis.plant_cop, "{:.2f}", "cooling_kwhth"),
             ("plant kW/ton", kpis.plant_kw_per_ton, "{:.3f}", "cooling_kwhth"),
             ("cooling from storage (net)", kpis.storage_cooling_delivered_kwhth, "{:,.0f} kWhth",
              "storage_cooling_delivered_kwhth"),
             ("ice used (melt)", kpis.ice_melt_kwhth, "{:,.0f} kWhth", "ice_melt_kwhth"),
             ("cooling from ice", kpis.ice_cooling_delivered_kwhth, "{:,.0f} kWhth", "ice_cooling_delivered_kwhth"),
             ("savings vs baseline", kpis.savings_cny, "{:,.0f} CNY", None)]
    for label, value, fmt, covered_by in rows:
        table.add_row(label, "—" if value is None else fmt.format(value),
                      "" if covered_by is None else f"{cover[covered_by]:.1%}")
    console.print(table)
    if kpis.peak_demand_start_utc is not None:
        console.print(f"peak demand interval began {local_minute(kpis.peak_demand_start_utc, park)} "
                      f"({park.site.timezone})")
    if kpis.billed_demand_start_utc is not None:
        console.print(f"billed demand interval of the month began {local_minute(kpis.billed_demand_start_utc, park)}")


@commands.command()
def faults(
    park_file: ParkFile,
    from_: FromOption,
    to: ToOption,
    history: HistoryOption = None,
    thresholds: Annotated[Path | None, typer.Option(help="YAML file overriding fault-rule thresholds")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Detect faults in a period of history, store the episodes with it, and print them with fault KPIs and
    alarm-system KPIs."""
    from energy.alarm_kpis import alarm_system_kpis
    from energy.fault_detection import detect_faults
    from energy.fault_kpis import fault_kpis
    from energy.fault_rules import FaultThresholds, load_fault_thresholds
    from twin.history import FaultEpisodeStore

    park = load_park(park_file)
    start, end = parse_period(park, from_, to)
    limits = load_fault_thresholds(thresholds) if thresholds else FaultThresholds()
    with open_history(history_url(park, history)) as store:
        episodes = detect_faults(store, park, start, end, limits, FaultEpisodeStore(store))
    per_asset, per_kind = fault_kpis(park, episodes, start, end)
    alarm_system = alarm_system_kpis(episodes, start, end)
    if json_output:
        print_json({
            "from_utc": start.isoformat(), "to_utc": end.isoformat(),
            "episodes": [{"rule_id": e.rule_id, "asset_id": e.asset_id, "point_id": e.point_id or None,
                          "start_utc": e.start_utc.isoformat(), "end_utc": e.end_utc.isoformat() if e.end_utc else None,
                          "priority": e.priority.label, "suppressed_by": e.suppressed_by, "evidence": e.evidence}
                         for e in episodes],
            "kpis_per_asset": {a: k.as_dict() for a, k in per_asset.items()},
            "kpis_per_kind": {kind: k.as_dict() for kind, k in per_kind.items()},
            "alarm_system": alarm_system,
        })
        return
    table = Table(title=f"{park.name}: {len(episodes)} fault episode(s) {local_minute(start, park)} to "
                        f"{local_minute(end, park)}")
    for column in ("rule", "asset", "point", "start", "end", "priority", "suppressed by", "evidence"):
        table.add_column(column)
    for e in episodes:
        table.add_row(e.rule_id, e.asset_id, e.point_id, local_minute(e.start_utc, park),
                      local_minute(e.end_utc, park) if e.end_utc else "active", e.priority.label, e.suppressed_by or "",
                      ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in e.evidence.items()))
    console.print(table)
    kpi_table = Table(title="fault KPIs per asset kind")
    for column in ("kind", "faults", "hours in fault", "% time", "MTBF h", "MTTR h", "availability", "comm losses"):
        kpi_table.add_column(column, justify="right")
    for kind, k in per_kind.items():
        kpi_table.add_row(kind, str(k.faults), f"{k.hours_in_fault:.2f}", f"{k.pct_time_in_fault:.2f}",
                          "—" if k.mtbf_h is None else f"{k.mtbf_h:,.1f}",
                          "—" if k.mttr_h is None else f"{k.mttr_h:.2f}",
                          f"{k.availability:.4f}", str(k.comm_losses))
    console.print(kpi_table)
    _print_alarm_system(alarm_system)


def _print_alarm_system(kpis: dict) -> None:
    """The alarm-system KPIs (energy.alarm_kpis) as a table."""
    table = Table(title="alarm system (ISA-18.2 / EEMUA 191)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name, value in (
            ("alarms (annunciated)", f"{kpis['alarms']:,}"), ("suppressed by cause", f"{kpis['suppressed']:,}"),
            ("alarms per operator hour", f"{kpis['alarms_per_operator_hour']:.2f}"),
            ("10-min periods in flood", f"{kpis['flood_periods_pct']:.2f} %"),
            ("chattering alarms", str(len(kpis["chattering_alarms"]))),
            ("standing alarms (> 24 h)", str(len(kpis["standing_alarms"]))),
            ("priorities", ", ".join(f"{label} {count} ({kpis['priority_pct'][label]:.0f} %)"
                                     for label, count in kpis["priority_counts"].items()))):
        table.add_row(name, value)
    console.print(table)


