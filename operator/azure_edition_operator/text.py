"""Text from outside made safe to show (pure): no control characters, and a bounded size.

Condition messages, Event messages and what ``kubectl aevm`` prints carry text the operator did not
write: Azure's error messages, a guest certificate's subject, a value a tenant put in a spec or an
annotation. A terminal interprets some characters as commands (ANSI/OSC escape sequences: colours,
a rewritten title, OSC 52 writing the reader's clipboard; ``\\r`` overwriting what was printed; bidi
overrides showing text in another order than it is stored). ``visible`` shows each such character as
an escape (``\\x1b``, ``\\u202e``), so the text stays readable and nothing is lost silently;
``capped`` cuts a message to a few KiB and says what was cut.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MESSAGE_LIMIT = 4096
"""Bytes (UTF-8) of a condition message: Kubernetes allows 32 KiB, which would let one message take
most of the object's status, and a person reads the first lines anyway."""

_KEPT = frozenset("\n\t")  # layout within a multi-line message, harmless on any terminal
_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Controls, format characters (bidi overrides and isolates, zero-width), surrogates, private use,
unassigned, line and paragraph separators."""


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with every character a terminal could act on written as an escape. Idempotent: what it
    returns is printable, so a message read back from status and cleaned again is unchanged."""
    kept = _KEPT if keep_newlines else frozenset()
    if text.isprintable() and not kept.intersection(text):
        return text
    return "".join(
        _escape(c) if c not in kept and unicodedata.category(c) in _CATEGORIES else c for c in text
    )


def capped(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (at a character boundary), saying how much was cut."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    cut = len(encoded)
    note = f" [… {cut} bytes, cut at {limit}]"
    head = encoded[: max(0, limit - len(note.encode()))].decode("utf-8", "ignore")
    return head + note


FIELD_LIMIT = 1024
"""Bytes of one value from outside copied into status (a certificate's subject or issuer)."""
LIST_LIMIT = 64
"""Entries of a list from outside copied into status (a certificate's DNS names)."""


def field(text: object, limit: int = FIELD_LIMIT) -> str:
    """One value from outside for a status field: on one line, visible, capped."""
    return capped(visible(str(text), keep_newlines=False), limit)


def fields(values: Iterable[object], limit: int = FIELD_LIMIT, count: int = LIST_LIMIT) -> list[str]:
    """A list from outside for status: the first ``count`` entries, each a ``field``, then one entry
    saying how many more there were (nothing is dropped without saying so)."""
    items = list(values)
    shown = [field(v, limit) for v in items[:count]]
    if len(items) > count:
        shown.append(f"[… {len(items) - count} more]")
    return shown


def message(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """The one cleaning of a message the operator publishes (conditions, Events): visible, then capped."""
    return capped(visible(str(text)), limit)
