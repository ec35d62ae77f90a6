"""Azure's ``x-ms-correlation-request-id`` in a failure's message: Azure Resource Manager returns it
on every response, and it is what an Azure support ticket asks for.

One format, here: ``azure/errors`` writes it into every failure Azure answered, and ``conditions``
compares messages without it, so a failure retried with a new id each time rewrites no condition
(status is written only on change, and its Event is posted once). Plain text only: the plugin and the
status code import this without the Azure SDKs.
"""

from __future__ import annotations

import re

HEADER = "x-ms-correlation-request-id"
_NOTE = re.compile(r" \[x-ms-correlation-request-id: [^\]]*\]")


def note(correlation_id: str) -> str:
    """The suffix a failure's message gets."""
    return f" [{HEADER}: {correlation_id}]"


def without(message: str) -> str:
    """``message`` with any correlation id removed (to compare two reports of the same failure)."""
    return _NOTE.sub("", message)


def same_failure(old: str, new: str) -> bool:
    """Two messages that differ at most in their correlation ids."""
    return old == new or without(old) == without(new)
