"""A source value as the text the one parser reads, whatever source it came from, and where a
JSON document holds it."""

from decimal import Decimal
from typing import Any

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


def value_at(document: Any, path: str) -> Any:
    """The value at the dotted ``path`` (``user.id``) of a JSON document; None where any step of
    it is missing or not an object."""
    for part in path.split(".") if path else []:
        document = document.get(part) if isinstance(document, dict) else None
    return document
