"""adminsecret: the VM admin Secret checked against Azure's rules; problems name the rule, never the value."""

from __future__ import annotations

import base64

import pytest

from azure_edition_operator.adminsecret import AdminSecretProblem, admin_values


def data(username: bytes | str, password: bytes | str) -> dict[str, str]:
    enc = lambda v: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()  # noqa: E731
    return {"username": enc(username), "password": enc(password)}


def test_a_good_secret_decodes():
    assert admin_values(data("azureadmin", "Demo-Only-Passw0rd!")) == ("azureadmin", "Demo-Only-Passw0rd!")


@pytest.mark.parametrize(
    ("username", "password", "rule"),
    [
        ("azureadmin", b"\xff\xfeNot-UTF8-Passw0rd", "not UTF-8"),
        ("azureadmin", "Short1!", "12-123 characters"),
        ("azureadmin", "x" * 124, "12-123 characters"),
        ("azureadmin", "alllowercaseletters", "3 of"),
        ("azureadmin", "Password!", "12-123"),
        ("azureadmin", "P@ssword123x"[:-1] + "", "12-123"),
        ("admin", "Demo-Only-Passw0rd!", "reserves"),
        ("a" * 21, "Demo-Only-Passw0rd!", "1-20 characters"),
        ("bad name", "Demo-Only-Passw0rd!", "must not contain"),
        (b"\xc3", "Demo-Only-Passw0rd!", "not UTF-8"),
    ],
)
def test_each_problem_names_the_rule_not_the_value(username, password, rule):
    with pytest.raises(AdminSecretProblem, match=rule) as err:
        admin_values(data(username, password))
    shown = password.decode("latin-1") if isinstance(password, bytes) else password
    assert shown not in str(err.value)


def test_not_base64_is_a_problem_too():
    with pytest.raises(AdminSecretProblem, match="'password' is not UTF-8"):
        admin_values({"username": base64.b64encode(b"azureadmin").decode(), "password": "!!!notbase64"})
