"""The simulated guest's LocalMachine\\My store and SMB certificate mappings, through the scripts the
operator sends (its own script lines, parsed back with its own parser)."""

from __future__ import annotations

import base64
import json

import pytest

from azure_edition_operator.checks.smb_guest import (
    IMPORT_SCRIPT,
    MAP_SCRIPT,
    STATUS_SCRIPT,
    parse_guest_state,
)
from azure_edition_operator.checks.smb_rotation import pfx_of, source_certificate
from azure_edition_simulator import certs, guest
from azure_edition_simulator.certstore import ScriptFailed

NAME = "fs01.contoso.com"


def _source(**spec):
    issued = certs.issue_certificate(
        certs.CertificateSpec.from_dict({"commonName": NAME, "expiresInDays": 90, **spec})
    )
    return source_certificate({
        "tls.crt": base64.b64encode(issued.fullchain_pem.encode()).decode(),
        "tls.key": base64.b64encode(issued.key_pem.encode()).decode(),
    })  # fmt: skip


def _import(g, source, password="pw-1") -> dict:
    pfx = base64.b64encode(pfx_of(source, password.encode())).decode()
    out, _ = guest.run_script(g, IMPORT_SCRIPT, {"PfxBase64": pfx, "PfxPassword": password})
    return json.loads(out)


def test_import_then_map_then_rotate_removes_the_replaced_mapping():
    g = guest.new_guest({})
    first, second = _source(), _source()
    assert _import(g, first)["imported"] == first.thumbprint
    out, _ = guest.run_script(g, MAP_SCRIPT, {"ServerName": NAME, "Thumbprint": first.thumbprint})
    state = parse_guest_state(out)
    assert state.mapping_for(NAME).thumbprint == first.thumbprint
    assert state.stored(first.thumbprint).has_private_key
    # another name mapped to the old certificate by hand goes with it; an unrelated one stays
    guest.run_script(g, MAP_SCRIPT, {"ServerName": "alias.contoso.com", "Thumbprint": first.thumbprint})
    _import(g, second, "pw-2")
    guest.run_script(g, MAP_SCRIPT, {"ServerName": "keep.contoso.com", "Thumbprint": second.thumbprint})
    out, _ = guest.run_script(g, MAP_SCRIPT, {"ServerName": NAME, "Thumbprint": second.thumbprint,
                                              "RemoveThumbprints": first.thumbprint})  # fmt: skip
    state = parse_guest_state(out)
    assert {(m.name, m.thumbprint) for m in state.mappings} == {
        (NAME, second.thumbprint),
        ("keep.contoso.com", second.thumbprint),
    }
    assert g["mappings"][0]["name"] == NAME  # re-pointed in place: the listener's mapping stays first
    assert g["mappings"][0]["keyPem"]  # what the QUIC endpoint serves from
    # the status script shows the store, without keys
    status = parse_guest_state(guest.run_script(g, STATUS_SCRIPT)[0])
    assert {c.thumbprint for c in status.store} == {first.thumbprint, second.thumbprint}
    assert "PRIVATE KEY" not in json.dumps(guest.public_guest(g))


def test_wrong_password_fails_without_echoing_it():
    g = guest.new_guest({})
    pfx = base64.b64encode(pfx_of(_source(), b"right")).decode()
    with pytest.raises(ScriptFailed) as err:
        guest.run_script(g, IMPORT_SCRIPT, {"PfxBase64": pfx, "PfxPassword": "wrong-one"})
    assert "password is incorrect" in str(err.value) and "wrong-one" not in str(err.value)
    assert g["certStore"] == []


def test_mapping_a_certificate_not_in_the_store_fails():
    g = guest.new_guest({})
    with pytest.raises(ScriptFailed, match="was not found in Cert:"):
        guest.run_script(g, MAP_SCRIPT, {"ServerName": NAME, "Thumbprint": "AB" * 20})
    assert g["mappings"] == []
