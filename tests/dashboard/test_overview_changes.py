"""How the Overview words a change against the compared period: percentage points for ratios."""

from __future__ import annotations

from dashboard.pages.overview import _change


def test_ratio_changes_are_percentage_points_and_energy_changes_relative():
    ratio = _change(30.0, 25.0, "%", True, "same weekdays a week before")
    assert ratio.children == "▲ +5.0 pp vs same weekdays a week before" and "text-success" in ratio.className
    energy = _change(110.0, 100.0, "kWh", False, "same weekdays a week before")
    assert energy.children == "▲ +10.0% vs same weekdays a week before" and "text-danger" in energy.className
    assert _change(5.0, None, "%", True, "x").children == "nothing to compare with (x)"
