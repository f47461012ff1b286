"""The embedded PostgreSQL server, and the Dagster instance storage on it (or on a
configured server).
"""
