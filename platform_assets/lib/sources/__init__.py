"""Sources other than the landing zone."""
