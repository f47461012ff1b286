"""Driving a running ``dagster dev`` the way the UI does: its process, and its GraphQL API.

Used by the end-to-end tests and by ``benchmarks/backfill.py``; nothing here is needed to run the
platform itself.
"""
