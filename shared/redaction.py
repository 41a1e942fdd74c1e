"""Masking what a terminal, a log line or an error message may carry: URL passwords
and credential-bearing query values.

One function for the whole project, beneath both ``shared.config`` (which shows
settings) and the store modules (whose URL errors quote the URL); it imports nothing of
the project.
"""

from __future__ import annotations

import re

MASK = "***"
# Query parameters that carry a credential: ?password=, ?token=, ?api_key=, S3 presigned
# X-Amz-Signature/-Credential/-Security-Token, MongoDB's authMechanismProperties
# (AWS_SESSION_TOKEN:...). Masking a harmless one (sslkey=/path) only costs a detail.
_SECRET_QUERY_KEY = re.compile(
    r"pass|pwd|secret|token|key|sig|credential|authmechanismproperties", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_url(text: str) -> str:
    """``text`` with the password and credential query values of every URL in it masked:
    ``mysql://user:***@host/db``, ``redis://:***@host:6379/0``, ``https://host/x?token=***``.
    A text that is one URL is masked as a whole, so a password holding a space or a
    ``/`` (unencoded, which the stores' parsers then misread) is still masked."""
    if _URL_IN_TEXT.match(text) and text.count("://") == 1:
        return _mask_one_url(text)
    return _URL_IN_TEXT.sub(lambda found: _mask_one_url(found.group()), text)


def _mask_one_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    # The last "@" ends the user info even when a password holds an unencoded "/", "?" or
    # "@"; one that was really in the path or query only masks more than needed.
    userinfo, at, hostpart = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{MASK}@{hostpart}" if colon else rest
    head, question, query = rest.partition("?")
    if not question:
        return f"{scheme}://{rest}"
    query, hash_, fragment = query.partition("#")
    fields = []
    for field_ in query.split("&"):
        name, equals, _ = field_.partition("=")
        fields.append(f"{name}={MASK}" if equals and _SECRET_QUERY_KEY.search(name) else field_)
    return f"{scheme}://{head}?{'&'.join(fields)}{hash_}{fragment}"
