"""The warehouse: the resource handing out connections, which errors are transient and
retried, transactions, and the platform's own tables.
"""
