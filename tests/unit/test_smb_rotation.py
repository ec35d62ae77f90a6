"""SMB over QUIC rotation from a TLS Secret: parsing the source, judging it, planning the guest's steps,
packing the PFX (pure; the PFX is read back with cryptography as Windows' importer would)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from azure_edition_operator.checks.smb_guest import CertificateMapping, GuestState, StoredCertificate
from azure_edition_operator.checks.smb_rotation import (
    RotationPlan,
    SecretProblem,
    pfx_of,
    plan_rotation,
    rotation_message,
    source_certificate,
    source_problems,
)
from azure_edition_simulator import certs

NAME = "fs01.contoso.com"
NOW = dt.datetime.now(dt.UTC)


def tls_data(**spec) -> tuple[dict[str, str], certs.IssuedCertificate]:
    spec.setdefault("commonName", NAME)
    spec.setdefault("dnsNames", [NAME])
    if "notAfter" not in spec:
        spec.setdefault("expiresInDays", 90)
    issued = certs.issue_certificate(certs.CertificateSpec.from_dict(spec))
    data = {
        "tls.crt": base64.b64encode(issued.fullchain_pem.encode()).decode(),
        "tls.key": base64.b64encode(issued.key_pem.encode()).decode(),
    }
    return data, issued


def test_source_reads_leaf_key_and_chain_and_keeps_the_key_out_of_repr():
    data, issued = tls_data()
    source = source_certificate(data)
    assert source.thumbprint == issued.thumbprint
    assert source.not_after == issued.not_after
    assert source.dns_names == (NAME,)
    assert len(source.chain_pem) == issued.chain_pem.count("BEGIN CERTIFICATE")
    assert "PRIVATE KEY" not in repr(source) and issued.key_pem not in repr(source)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("tls.key"), "has no 'tls.key' key"),
        (lambda d: d.pop("tls.crt"), "has no 'tls.crt' key"),
        (lambda d: d.update({"tls.crt": "not base64!"}), "key 'tls.crt' is not base64"),
        (lambda d: d.update({"tls.crt": base64.b64encode(b"junk").decode()}), "not a PEM certificate chain"),
        (lambda d: d.update({"tls.key": base64.b64encode(b"junk").decode()}), "not an unencrypted PEM"),
    ],
)
def test_bad_secrets_are_named_by_key_never_by_value(mutate, expected):
    data, issued = tls_data()
    mutate(data)
    with pytest.raises(SecretProblem) as err:
        source_certificate(data)
    assert expected in str(err.value)
    assert issued.key_pem[30:60] not in str(err.value)


def test_a_key_of_another_certificate_is_refused():
    data, _ = tls_data()
    other, _ = tls_data()
    data["tls.key"] = other["tls.key"]
    with pytest.raises(SecretProblem, match="does not belong to the first certificate"):
        source_certificate(data)


def test_source_problems_wrong_name_and_expired():
    assert source_problems(source_certificate(tls_data()[0]), NAME, NOW) == ()
    wrong = source_problems(source_certificate(tls_data(dnsNames=["other.contoso.com"])[0]), NAME, NOW)
    assert any("no DNS SAN matches fs01.contoso.com" in p for p in wrong)
    old = source_certificate(
        tls_data(
            notBefore=(NOW - dt.timedelta(days=20)).isoformat(),
            notAfter=(NOW - dt.timedelta(days=1)).isoformat(),
        )[0]
    )
    assert any(p.startswith("it expired") for p in source_problems(old, NAME, NOW))


def _guest(mapped: str | None, stored: dict[str, bool]) -> GuestState:
    mappings = (CertificateMapping(NAME, mapped, None),) if mapped else ()
    store = tuple(StoredCertificate(t, None, None, (NAME,), key) for t, key in stored.items())
    return GuestState(True, mappings, store)


def test_plan_everything_when_the_guest_is_unknown_or_empty():
    source = source_certificate(tls_data()[0])
    for guest in (None, _guest(None, {})):
        plan = plan_rotation(source, NAME, guest)
        assert plan == RotationPlan(
            NAME, source.thumbprint, import_pfx=True, map_certificate=True, replaced=()
        )


def test_plan_replaces_the_old_mapping_and_skips_an_import_already_done():
    source = source_certificate(tls_data()[0])
    plan = plan_rotation(source, NAME, _guest("OLD", {"OLD": True, source.thumbprint: True}))
    assert (plan.import_pfx, plan.map_certificate, plan.replaced) == (False, True, ("OLD",))


def test_plan_reimports_a_stored_copy_without_its_key():
    source = source_certificate(tls_data()[0])
    plan = plan_rotation(source, NAME, _guest("OLD", {source.thumbprint: False}))
    assert plan.import_pfx and plan.map_certificate


def test_plan_is_empty_when_mapped_and_stored():
    source = source_certificate(tls_data()[0])
    plan = plan_rotation(source, NAME, _guest(source.thumbprint, {source.thumbprint: True}))
    assert plan.empty and plan.replaced == ()


def test_mapping_names_match_case_insensitively():
    source = source_certificate(tls_data()[0])
    guest = GuestState(True, (CertificateMapping(NAME.upper(), source.thumbprint, None),),
                       (StoredCertificate(source.thumbprint, None, None, (), True),))  # fmt: skip
    assert plan_rotation(source, NAME, guest).empty


def test_pfx_round_trips_with_its_password_only():
    data, _ = tls_data()
    source = source_certificate(data)
    pfx = pfx_of(source, b"one-time-password")
    key, leaf, chain = pkcs12.load_key_and_certificates(pfx, b"one-time-password")
    assert leaf is not None and key is not None
    assert leaf.public_bytes(serialization.Encoding.PEM) == source.cert_pem
    assert len(chain) == len(source.chain_pem)
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(pfx, b"wrong")


def test_rotation_message_names_thumbprints_source_and_date():
    plan = RotationPlan(NAME, "NEW", True, True, ("OLD",))
    text = rotation_message(plan, "Secret/fs01-tls", dt.datetime(2027, 3, 1, tzinfo=dt.UTC))
    assert text == (
        "SMB over QUIC now serves certificate NEW for fs01.contoso.com (from Secret/fs01-tls, valid until "
        "2027-03-01), replacing OLD"
    )


# ----------------------------------------------------------------------------- Key Vault: the guest's store


def _stored(
    thumbprint: str, days_left: float, *, key: bool = True, names=(NAME,), started_days_ago: float = 10
):
    return StoredCertificate(thumbprint, NOW - dt.timedelta(days=started_days_ago),
                             NOW + dt.timedelta(days=days_left), tuple(names), key)  # fmt: skip


def test_newest_in_store_picks_the_longest_valid_usable_one():
    from azure_edition_operator.checks.smb_rotation import newest_in_store

    guest = GuestState(True, (), (
        _stored("OLD", 20), _stored("NEW", 300), _stored("NOKEY", 400, key=False),
        _stored("OTHER", 500, names=("other.contoso.com",)), _stored("EXPIRED", -1),
        _stored("FUTURE", 600, started_days_ago=-1), _stored("WILD", 250, names=("*.contoso.com",)),
    ))  # fmt: skip
    assert newest_in_store(guest, NAME, NOW).thumbprint == "NEW"
    assert newest_in_store(GuestState(True, (), (_stored("NOKEY", 9, key=False),)), NAME, NOW) is None


def test_store_plan_maps_and_replaces_only_when_the_mapping_differs():
    from azure_edition_operator.checks.smb_rotation import plan_store_rotation

    new = _stored("NEW", 300)
    plan = plan_store_rotation(new, NAME, _guest("OLD", {"OLD": True, "NEW": True}))
    assert (plan.import_pfx, plan.map_certificate, plan.replaced) == (False, True, ("OLD",))
    assert plan_store_rotation(new, NAME, _guest("NEW", {"NEW": True})).empty


def test_extension_problem_names_role_vault_and_identity():
    from azure_edition_operator.checks.smb_rotation import extension_problem

    url = "https://kv-branch.vault.azure.net/secrets/fs01"
    denied = extension_problem("Error", "Failed to download: 403 Forbidden", url, "1111-2222")
    assert "'Key Vault Secrets User' on the Key Vault kv-branch.vault.azure.net" in denied
    assert "1111-2222" in denied and "--assignee-object-id 1111-2222" in denied
    assert "no system-assigned managed identity" in extension_problem("Error", "x", url, None)
    assert extension_problem("Error", "disk full", url, "p") == (
        f"the Key Vault extension reports an error for {url}: disk full"
    )
    assert extension_problem("Info", "Successfully retrieved", url, "p") is None


def test_identity_update_adds_system_assigned_and_keeps_user_assigned():
    from azure.mgmt.compute import models as cm

    from azure_edition_operator.azure.specs import identity_update

    want = cm.VirtualMachine(location="x", identity=cm.VirtualMachineIdentity(type="SystemAssigned"))
    assert identity_update(want, cm.VirtualMachine(location="x")).type == "SystemAssigned"
    user = {"/subscriptions/s/rg/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u": {}}
    both = identity_update(want, cm.VirtualMachine(location="x", identity=cm.VirtualMachineIdentity(
        type="UserAssigned", user_assigned_identities=user)))  # fmt: skip
    assert both.type == "SystemAssigned, UserAssigned" and set(both.user_assigned_identities) == set(user)
    have = cm.VirtualMachine(location="x", identity=cm.VirtualMachineIdentity(type="SystemAssigned"))
    assert identity_update(want, have) is None
    assert identity_update(cm.VirtualMachine(location="x"), cm.VirtualMachine(location="x")) is None


def test_key_vault_extension_settings_follow_the_spec():
    from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
    from azure_edition_operator.azure.specs import key_vault_extension_drift, key_vault_extension_settings

    spec = AzureEditionVMSpec.model_validate({
        "capabilities": ["SMBOverQUIC"], "adminCredentialsSecretRef": {"name": "a"},
        "azure": {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg",
                  "location": "westeurope", "subnetId": "/subscriptions/00000000-0000-0000-0000-000000000000/"
                  "resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"},
        "smbOverQuic": {"serverName": NAME, "certificate": {"keyVault": {
            "secretUrl": "https://kv.vault.azure.net/secrets/fs01/", "pollingIntervalSeconds": 600}}},
    })  # fmt: skip
    settings = key_vault_extension_settings(spec)["secretsManagementSettings"]
    assert settings == {"pollingIntervalInS": "600", "certificateStoreName": "MY",
                        "certificateStoreLocation": "LocalMachine",
                        "observedCertificates": ["https://kv.vault.azure.net/secrets/fs01"]}  # fmt: skip
    assert key_vault_extension_drift(spec, None)
    assert not key_vault_extension_drift(spec, key_vault_extension_settings(spec))
    assert key_vault_extension_drift(
        spec, {"secretsManagementSettings": {**settings, "pollingIntervalInS": "3600"}}
    )


# ----------------------------------------------------------------------------- reachable by name


def test_reachability_note_says_whether_a_cname_is_needed():
    from azure_edition_operator.checks.smb_rotation import reachability_note

    fqdn = "fs01.westeurope.cloudapp.azure.com"
    assert "clients reach it by name" in reachability_note(fqdn.upper() + ".", fqdn)
    assert f"point {NAME} at it (a CNAME)" in reachability_note(NAME, fqdn)


def test_public_ip_dns_update_only_when_the_label_differs():
    from azure.mgmt.network import models as nm

    from azure_edition_operator.azure.specs import public_ip_dns_update

    def pip(label):
        dns = nm.PublicIPAddressDnsSettings(domain_name_label=label) if label else None
        return nm.PublicIPAddress(location="x", tags={"a": "1"},
                                  properties=nm.PublicIPAddressPropertiesFormat(dns_settings=dns))  # fmt: skip

    assert public_ip_dns_update(pip("fs01"), "fs01", {"a": "1"}) is None
    assert public_ip_dns_update(pip("by-hand"), None, {"a": "1"}) is None  # not ours to remove
    changed = public_ip_dns_update(pip(None), "fs01", {"a": "1"})
    assert changed.properties.dns_settings.domain_name_label == "fs01"


def test_a_dns_label_needs_a_public_ip():
    from azure_edition_operator.api.v1alpha1 import AzureSpec

    base = {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg", "location": "westeurope",
            "subnetId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
            "Microsoft.Network/virtualNetworks/v/subnets/s"}  # fmt: skip
    with pytest.raises(ValueError, match=r"set spec\.azure\.publicIP: true"):
        AzureSpec.model_validate({**base, "publicIPDnsLabel": "fs01"})
    with pytest.raises(ValueError):
        AzureSpec.model_validate({**base, "publicIP": True, "publicIPDnsLabel": "Fs_01"})
    assert AzureSpec.model_validate(
        {**base, "publicIP": True, "publicIPDnsLabel": "fs01"}
    ).public_ip_dns_label
