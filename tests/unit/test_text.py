"""Text from outside made safe to show: ``text.visible`` / ``text.capped``, and where they are used
(condition messages, Events, ``kubectl aevm``'s output), with hostile strings."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest

from azure_edition_operator import conditions as cond
from azure_edition_operator import publish, text
from azure_edition_operator.api.v1alpha1 import ConditionStatus
from azure_edition_operator.plugin import main as plugin_main
from azure_edition_operator.plugin import render
from tests import plugin_samples as samples

HOSTILE = {
    "ansi colour": "\x1b[31mred\x1b[0m",
    "osc 52 clipboard": "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07",
    "title": "\x1b]0;owned\x1b\\",
    "carriage return": "Ready: False\rReady: True ",
    "nul": "a\x00b",
    "c1 csi": "\x9b31m",
    "bidi override": "invoice\u202egnp.exe",
    "bidi isolate": "\u2066x\u2069",
    "zero width": "pay\u200bpal",
    "line separator": "one\u2028two",
    "delete": "x\x7f",
    "backspace": "safe\x08\x08\x08\x08evil",
}


def acts_on_a_terminal(value: str) -> list[str]:
    """The characters a terminal could act on (what must never reach one), ``\\n``/``\\t`` aside."""
    return [c for c in value if c not in "\n\t" and unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs"}]


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_visible_escapes_every_character_a_terminal_acts_on(hostile: str) -> None:
    shown = text.visible(hostile)
    assert acts_on_a_terminal(shown) == []
    assert text.visible(shown) == shown  # idempotent: a message read back and cleaned again is unchanged
    assert len(shown) > len(hostile)  # escaped, not dropped: the reader sees that something was there


def test_visible_shows_escapes_a_person_can_read_and_leaves_normal_text_alone() -> None:
    assert text.visible("\x1b[31mred") == "\\x1b[31mred"
    assert text.visible("invoice\u202egnp.exe") == "invoice\\u202egnp.exe"
    assert text.visible("a\x00b") == "a\\x00b"
    normal = "Überprüfung: 日本語 — CN=fs01.branch-a.contoso.com, 2 patches\nsecond line\tcolumn"
    assert text.visible(normal) == normal
    assert text.visible("two\nlines", keep_newlines=False) == "two\\x0alines"


def test_capped_cuts_at_the_limit_in_bytes_and_says_so() -> None:
    assert text.capped("x" * 4096) == "x" * 4096
    long = "é" * 100_000  # two bytes each: the cut must fall on a character boundary
    cut = text.capped(long)
    assert len(cut.encode()) <= text.MESSAGE_LIMIT
    assert cut.endswith(f"[… {len(long.encode())} bytes, cut at {text.MESSAGE_LIMIT}]")
    assert cut.startswith("é" * 1000) and "\ufffd" not in cut
    assert text.capped(cut) == cut


def test_every_condition_written_is_visible_and_capped() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    forged = "".join(HOSTILE.values()) + "A" * 200_000
    written = cond.upsert(
        [], cond.Condition("VMProvisioned", ConditionStatus.FALSE, "Failed", forged), now, 1
    )
    (condition,) = written
    assert len(condition.message.encode()) <= text.MESSAGE_LIMIT
    assert acts_on_a_terminal(condition.message) == [] and "bytes, cut at" in condition.message
    again = cond.upsert(
        written, cond.Condition("VMProvisioned", ConditionStatus.FALSE, "Failed", forged), now, 1
    )
    assert again == written  # the same outcome writes nothing new


def test_events_carry_no_control_characters_and_fit_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(publish.kopf, "event", lambda body, **event: sent.append(event))
    publish.post({}, "Warning", "Bad\x1b[2JReason", "".join(HOSTILE.values()) * 200)
    (event,) = sent
    assert acts_on_a_terminal(event["reason"]) == [] and acts_on_a_terminal(event["message"]) == []
    assert "\n" not in event["reason"]
    assert len(event["message"].encode()) <= publish.EVENT_MESSAGE_LIMIT


def test_the_plugin_escapes_what_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    status = samples.degraded_status()
    status["smbOverQuic"]["subject"] = "CN=fs01" + HOSTILE["osc 52 clipboard"] + HOSTILE["title"]
    status["conditions"][0]["message"] = "".join(HOSTILE.values())
    obj = samples.obj(status=status)
    rendered = render.render_status(render.status_view(obj, datetime(2026, 11, 29, tzinfo=UTC)), 120)
    rendered += render.render_why(obj, 110)
    assert acts_on_a_terminal(rendered)  # render is pure layout; the sink escapes
    plugin_main._show(plugin_main.sys.stdout, rendered)
    printed = capsys.readouterr().out
    assert acts_on_a_terminal(printed) == []
    assert "\\x1b]52;c;" in printed and "\\u202e" in printed


def test_values_from_a_guest_certificate_are_one_visible_bounded_line_each() -> None:
    subject = "CN=fs01" + HOSTILE["osc 52 clipboard"] + "\nOU=x" + "y" * 10_000
    shown = text.field(subject)
    assert acts_on_a_terminal(shown) == [] and "\n" not in shown
    assert len(shown.encode()) <= text.FIELD_LIMIT and shown.endswith(f"cut at {text.FIELD_LIMIT}]")
    names = text.fields(f"n{i}.example\x1b[2J" for i in range(1000))
    assert len(names) == text.LIST_LIMIT + 1 and names[-1] == f"[… {1000 - text.LIST_LIMIT} more]"
    assert all(acts_on_a_terminal(n) == [] for n in names)
    assert text.fields(["a", "b"]) == ["a", "b"]
