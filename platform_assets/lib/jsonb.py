"""JSON values on the wire: canonical text, and Postgres's binary COPY form of ``jsonb``.

Shared by the IO manager (dict/list columns) and the dead-letter queue (payloads), so a JSON value
is written, hashed and compared the same way everywhere.
"""

import json

import pandas as pd

# Postgres's binary COPY format for jsonb: a version byte, then the JSON text.
JSONB_VERSION = b"\x01"
# Arrow field metadata marking a binary column as jsonb for table creation.
JSONB_METADATA = {b"postgres_type": b"jsonb"}


def canonical_json(value: object) -> str:
    """JSON with sorted keys and unescaped unicode: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def jsonb_bytes(value: object) -> bytes | None:
    """``value`` in jsonb's binary COPY form; None (and NaN) stay SQL NULL."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return JSONB_VERSION + canonical_json(value).encode()
