"""The Postgres IO manager: write modes, table schema and evolution, bulk loads, native
partitions, reads. Its SQL is built in ``statements``.
"""
