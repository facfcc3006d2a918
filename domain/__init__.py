"""The allocation domain, in plain Python (no Django, no DRF, no app imports)."""
