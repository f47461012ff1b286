"""The tables the platform writes: their SQL (quoting, parameters, partition predicates, DDL),
schema and evolution, recorded layout, indexes around bulk loads, native partitions, and each
partition's stored content digest. Every other layer builds its SQL here.
"""
