"""Pure parts of the periodic checks: VM status refresh, in-guest output parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from azure_edition_operator.checks.runner import vm_status_of
from azure_edition_operator.checks.smb_guest import (
    ENABLE_SCRIPT,
    STATUS_SCRIPT,
    GuestOutputError,
    GuestState,
    mapping_problems,
    parse_guest_state,
)


def test_vm_status_refresh_keeps_addresses_and_reads_power_state():
    wire = {"id": "/subscriptions/s/vm", "properties": {"vmId": "v1", "provisioningState": "Succeeded",
            "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"}]}}}  # fmt: skip
    previous = {"privateIPAddress": "10.0.0.4", "powerState": "running"}
    assert vm_status_of(wire, previous) == {
        "privateIPAddress": "10.0.0.4", "powerState": "deallocated", "resourceId": "/subscriptions/s/vm",
        "vmId": "v1", "provisioningState": "Succeeded"}  # fmt: skip


def test_scripts_carry_their_markers():
    assert STATUS_SCRIPT[0] == "# azureedition.io/script: smb-quic-status"
    assert ENABLE_SCRIPT[0] == "# azureedition.io/script: smb-quic-enable"
    assert any("Get-SmbServerCertificateMapping" in line for line in STATUS_SCRIPT)


def test_parse_guest_state_including_powershell_single_element_quirk():
    one = '{"enableSmbQuic":true,"mappings":{"name":"fs.contoso.com","thumbprint":"ab12","notAfter":"2027-01-01T00:00:00.0000000Z"}}'
    guest = parse_guest_state(one)
    assert guest.smb_quic_enabled and guest.mappings[0].thumbprint == "AB12"
    assert guest.mappings[0].not_after == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_guest_state('{"enableSmbQuic": false}') == GuestState(False, ())
    with pytest.raises(GuestOutputError):
        parse_guest_state("Get-SmbServerConfiguration : Access denied")


def test_mapping_problems():
    guest = parse_guest_state(
        '{"enableSmbQuic":true,"mappings":[{"name":"FS.contoso.com.","thumbprint":"AA"}]}'
    )
    assert mapping_problems(guest, "fs.contoso.com", "aa") == ()
    assert "serves BB" in mapping_problems(guest, "fs.contoso.com", "BB")[0]
    assert (
        "New-SmbServerCertificateMapping -Name other.contoso.com"
        in mapping_problems(guest, "other.contoso.com", "AA")[0]
    )
