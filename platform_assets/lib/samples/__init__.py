"""Seeded sample data: realistic order landing files and the CRM table, for
``platform-sample-data``.
"""
