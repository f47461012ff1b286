"""Where rows come from: landing files (RFC 4180 CSV, Parquet), a paged JSON API, an
incremental table extract.
"""
