"""The alternative SMB over QUIC port in the guest: what the status script's output says, and what the
operator changes to match the spec."""

from __future__ import annotations

import json

from azure_edition_operator.checks.smb_guest import (
    ALTERNATIVE_PORT_SCRIPT,
    STATUS_SCRIPT,
    GuestState,
    parse_guest_state,
)
from azure_edition_operator.checks.smb_ports import PortPlan, plan_ports, served_ports


def guest(*ports: int) -> GuestState:
    return GuestState(True, alternative_quic_ports=tuple(ports))


def test_quic_alternative_ports_are_read_from_the_status_output() -> None:
    out = {"enableSmbQuic": True, "mappings": [], "store": [], "alternativePorts": [
        {"transportType": "QUIC", "port": 8443, "enableInstances": "Default"},
        {"transportType": "TCP", "port": 4445, "enableInstances": "Default"},
        {"transportType": "QUIC", "port": 443, "enableInstances": "Default"},
    ]}  # fmt: skip
    assert parse_guest_state(json.dumps(out)).alternative_quic_ports == (443, 8443)
    one = {
        **out,
        "alternativePorts": {"transportType": "QUIC", "port": 9443},
    }  # ConvertTo-Json's lone element
    assert parse_guest_state(json.dumps(one)).alternative_quic_ports == (9443,)
    before_2025 = {k: v for k, v in out.items() if k != "alternativePorts"}
    assert parse_guest_state(json.dumps(before_2025)).alternative_quic_ports == ()


def test_the_plan_adds_the_declared_port_and_removes_the_others() -> None:
    assert plan_ports(8443, guest()) == PortPlan(add=(8443,), remove=())
    assert plan_ports(8443, guest(8443)) is None
    assert plan_ports(8443, guest(8443, 9443)) == PortPlan(add=(), remove=(9443,))
    assert plan_ports(8443, guest(9443)) == PortPlan(add=(8443,), remove=(9443,))
    assert plan_ports(None, guest(9443)) is None  # not declared: the guest's ports are left alone


def test_plan_parameters_and_drift_say_what_changes() -> None:
    plan = PortPlan(add=(8443,), remove=(9443, 10443))
    assert plan.parameters() == {"Add": "8443", "Remove": "9443,10443"}
    assert plan.drift() == "add QUIC port 8443, remove QUIC port 9443, remove QUIC port 10443"


def test_served_ports_are_the_listener_then_the_alternates() -> None:
    assert served_ports(443, guest(8443)) == [443, 8443]
    assert served_ports(443, None) == [443]
    assert served_ports(443, guest(443)) == [443]


def test_scripts_use_the_documented_cmdlets() -> None:
    script = "\n".join(ALTERNATIVE_PORT_SCRIPT)
    assert script.startswith("# azureedition.io/script: smb-alternative-port")
    assert (
        "New-SmbServerAlternativePort -TransportType QUIC -Port ([uint16]$p) -EnableInstances Default"
        in script
    )
    assert "Remove-SmbServerAlternativePort -TransportType QUIC -Port ([uint16]$p)" in script
    assert "Get-SmbServerAlternativePort -TransportType QUIC" in "\n".join(STATUS_SCRIPT)


def test_ports_served_lists_what_answered_and_says_why_the_alternate_did_not() -> None:
    import datetime as dt

    from azure_edition_operator.checks.smb_certificate import CertificateObservation, EndpointUnreachable
    from azure_edition_operator.checks.smb_ports import ports_served

    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    cert = CertificateObservation(
        subject="CN=fs01", issuer="CN=ca", not_before=now, not_after=now, dns_names=("fs01",),
        has_server_auth_eku=True, key_type="EC", key_size=256, signature_hash="sha256", thumbprint="AB", serial="01",
    )  # fmt: skip
    closed = EndpointUnreachable("127.0.0.5", 8443, "port closed (ICMP port unreachable)")
    assert ports_served(443, cert, 8443, cert) == ([443, 8443], "")
    served, note = ports_served(443, cert, 8443, closed)
    assert (
        served == [443]
        and note == "alternative port 8443/udp does not answer: port closed (ICMP port unreachable)"
    )
    assert ports_served(443, closed, 8443, cert) == ([8443], "")
    assert ports_served(443, cert, None, None) == ([443], "")
    assert ports_served(443, cert, 8443, None)[1].endswith("not probed (no address yet)")
