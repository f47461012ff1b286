"""Sales domain: daily order files landed raw, typed and cleaned, and summarised per day."""
