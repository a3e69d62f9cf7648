"""``aipc search``: the best artifact per target under its gates, as queued DVC experiments."""
