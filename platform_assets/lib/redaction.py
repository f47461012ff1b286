"""Secrets kept out of errors and logs: what a message must never carry, masked before it leaves.

Secrets reach the platform only through the environment: database URLs (with their passwords)
and the alert webhook's URL (whose path is its token). Any text an error, a log line or metadata
could carry goes through ``redact``: the credentials of any URL in it, ``password=``-style
fields of a connection string or query, and every secret value the environment holds (the
passwords of every ``*_URL`` variable, the whole webhook URL) are replaced by ``***``. A parser's
complaint about a malformed URL quotes the URL, or a piece of it: the piece is masked too, since
it is masked wherever it appears.
"""

import os
import re
from urllib.parse import unquote

from platform_assets.lib import settings

MASK = "***"
_URL_CREDENTIALS = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*):[^@\s'\"]*@")
_SECRET_FIELDS = re.compile(
    r"(?i)\b(?P<key>password|passwd|pwd|pass|token|secret|api[_-]?key|access[_-]?token|sig)"
    r"(?P<sep>\s*=\s*|=)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)"
)
_SHORTEST_SECRET = 4  # shorter values would mask ordinary words


def _url_password(value: str) -> str | None:
    """The password part of a URL, found leniently (the URL may be malformed)."""
    _, separator, rest = value.partition("://")
    if not separator or "@" not in rest:
        return None
    credentials = rest.rpartition("@")[0]
    _user, colon, password = credentials.partition(":")
    return password if colon and password else None


def environment_secrets() -> list[str]:
    """Every secret value the environment holds: URL passwords (as written and decoded) and the
    alert webhook's whole URL and path, longest first."""
    found: set[str] = set()
    for name, value in os.environ.items():
        if not value or not name.endswith(("_URL", "_URI")):
            continue
        password = _url_password(value)
        if password:
            found |= {password, unquote(password)}
        if name == settings.ALERT_WEBHOOK_URL_VAR:
            found.add(value)
            path = value.partition("://")[2].partition("/")[2]
            if path:
                found.add(path)
    return sorted((s for s in found if len(s) >= _SHORTEST_SECRET), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every credential and every secret of the environment masked."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('prefix')}:{MASK}@", text)
    text = _SECRET_FIELDS.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)
    for secret in environment_secrets():
        text = text.replace(secret, MASK)
    return text


class RedactedError(Exception):
    """An error whose message had a secret masked; raised ``from None`` so that the original,
    unmasked, is not carried along in its chain."""


def redacted(error: BaseException, context: str) -> RedactedError:
    """``error`` as a ``RedactedError`` saying ``context``, its message masked."""
    return RedactedError(f"{context}: {redact(f'{type(error).__name__}: {error}')}")
