"""A source value as the text the one parser reads, whatever source it came from."""

import json


def field_text(value: object) -> str:
    """A source value as the text the parser reads: missing as empty, objects and lists as JSON,
    booleans as ``true``/``false``, anything else as ``str``."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
