"""The parameter object of the kinds that generate electricity from irradiance: an array and its inverter in
PVWatts terms, as a kind declares it (:meth:`twin.kinds.base.AssetBase.pvwatts`) and :mod:`energy.pv` models it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PVWattsParams:
    """One PV array and its inverter, in PVWatts terms.

    Attributes
    ----------
    dc_capacity_kw : float
        DC nameplate at STC (1000 W/m2, 25 degC cell), kW.
    tilt_deg : float
        Surface tilt from horizontal, degrees (0 to 90).
    azimuth_deg : float
        Surface azimuth, degrees clockwise from north (pvlib: 180 faces south).
    inverter_ac_kw : float
        Inverter AC rating, kW: the output never exceeds it.
    losses_pct : float
        PVWatts system losses (soiling, wiring, mismatch, ...), % of DC.
        14 is the PVWatts default [1]_.
    gamma_pdc_per_c : float
        DC power temperature coefficient, 1/degC (-0.0037: PVWatts "standard"
        crystalline silicon module).
    inverter_eta_nom : float
        Inverter nominal efficiency, 0 to 1 (PVWatts default 0.96).
    temperature_model : str
        Key of pvlib's SAPM cell temperature parameters [2]_. The default
        ``open_rack_glass_polymer`` suits the racked modules of flat
        industrial roofs (air flows behind them, as PVWatts "open rack");
        use ``close_mount_glass_glass`` or ``insulated_back_glass_polymer``
        for modules flush on a roof or facade, which run hotter.

    References
    ----------
    .. [1] Dobos, A.P. (2014). PVWatts Version 5 Manual. NREL/TP-6A20-62641.
    .. [2] King, D.L., Boyson, W.E. and Kratochvil, J.A. (2004). Photovoltaic
       Array Performance Model. SAND2004-3535, Sandia National Laboratories.
    """

    dc_capacity_kw: float
    tilt_deg: float
    azimuth_deg: float
    inverter_ac_kw: float
    losses_pct: float = 14.0
    gamma_pdc_per_c: float = -0.0037
    inverter_eta_nom: float = 0.96
    temperature_model: str = "open_rack_glass_polymer"

    def __post_init__(self) -> None:
        problems = []
        if self.dc_capacity_kw <= 0:
            problems.append(f"dc_capacity_kw must be > 0, got {self.dc_capacity_kw}")
        if self.inverter_ac_kw <= 0:
            problems.append(f"inverter_ac_kw must be > 0, got {self.inverter_ac_kw}")
        if not 0 <= self.tilt_deg <= 90:
            problems.append(f"tilt_deg must be 0..90, got {self.tilt_deg}")
        if not 0 <= self.azimuth_deg < 360:
            problems.append(f"azimuth_deg must be 0..<360, got {self.azimuth_deg}")
        if not 0 <= self.losses_pct < 100:
            problems.append(f"losses_pct must be 0..<100, got {self.losses_pct}")
        if not 0 < self.inverter_eta_nom <= 1:
            problems.append(f"inverter_eta_nom must be in (0, 1], got {self.inverter_eta_nom}")
        # pvlib's table names the temperature models; imported here, where parameters are made, so that the
        # park model loads without pvlib
        from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

        if self.temperature_model not in TEMPERATURE_MODEL_PARAMETERS["sapm"]:
            problems.append(f"temperature_model must be one of {', '.join(TEMPERATURE_MODEL_PARAMETERS['sapm'])}, "
                            f"got {self.temperature_model!r}")
        if problems:
            raise ValueError("; ".join(problems))
