"""A source value as the text the one parser reads, whatever source it came from."""

from decimal import Decimal

import simplejson


def field_text(value: object) -> str:
    """A source value as the text the parser reads: missing as empty, objects and lists as JSON,
    booleans as ``true``/``false``, a decimal with exactly its digits (never through a binary
    float), anything else as ``str``."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return simplejson.dumps(value, sort_keys=True, ensure_ascii=False, use_decimal=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # positional: 1E+2 is 100
    return str(value)
