"""The floor: the cheapest correct allocation Django + DRF can serve (benchmark only)."""
