"""Azure's limits on tags, names and Windows credentials, checked on every PUT/PATCH that carries them.

Why: Azure refuses these synchronously with a 400 an operator must turn into a clear condition; a
simulator that accepts them hides the operator's missing checks. Limits: Microsoft Learn "Use tags to
organize your Azure resources" (50 tag pairs; name ≤ 512, value ≤ 256; names without ``<>%&\\?/`` or
control characters), "Naming rules and restrictions for Azure resources" (Microsoft.Compute
virtualMachines: 1-64 characters, Windows computer name 1-15; Microsoft.Network networkInterfaces and
publicIPAddresses: 1-80, start alphanumeric, end alphanumeric or underscore), and the Windows VM FAQ
(admin password 8-123 characters meeting 3 of 4 complexity rules, a list of disallowed passwords and
user names, user name ≤ 20 characters and not ending in a period).
"""

from __future__ import annotations

import re
from typing import Any

from . import errors

MAX_TAGS = 50
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
TAG_NAME_FORBIDDEN = set("<>%&\\?/")

DISALLOWED_USERNAMES = frozenset(
    [
        "administrator",
        "admin",
        "user",
        "user1",
        "test",
        "user2",
        "test1",
        "user3",
        "admin1",
        "1",
        "123",
        "a",
        "actuser",
        "adm",
        "admin2",
        "aspnet",
        "backup",
        "console",
        "david",
        "guest",
        "john",
        "owner",
        "root",
        "server",
        "sql",
        "support",
        "support_388945a0",
        "sys",
        "test2",
        "test3",
        "user4",
        "user5",
    ]
)
DISALLOWED_PASSWORDS = frozenset(
    [
        "abc@123",
        "P@$$w0rd",
        "P@ssw0rd",
        "P@ssword123",
        "Pa$$word",
        "pass@word1",
        "Password!",
        "Password1",
        "Password22",
        "iloveyou!",
    ]
)
PASSWORD_MESSAGE = (
    "The supplied password must be between 8-123 characters long and must satisfy at least 3 of password "
    "complexity requirements from the following: \n1) Contains an uppercase character\n2) Contains a lowercase "
    "character\n3) Contains a numeric digit\n4) Contains a special character\n5) Control characters are not "
    "allowed"
)
_WINDOWS_NAME_FORBIDDEN = set("`~!@#$%^&*()=+_[]{}\\|;:.'\",<>/?")
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?$")


def check_tags(tags: Any) -> None:
    """ARM's tag rules (codes: InvalidTagNameCharacters is Azure's; the count and length codes are ARM's
    ``InvalidTag*`` family, wording: simulator)."""
    if tags is None:
        return
    if not isinstance(tags, dict):
        raise errors.invalid_request_content("The request content was invalid: 'tags' must be an object.")
    if len(tags) > MAX_TAGS:
        raise errors.ArmError(
            400, "InvalidTagCount", f"The number of tags ({len(tags)}) exceeds the maximum of {MAX_TAGS}."
        )
    bad_names = [n for n in tags if any(c in TAG_NAME_FORBIDDEN or ord(c) < 32 for c in n)]
    if bad_names:
        raise errors.ArmError(
            400,
            "InvalidTagNameCharacters",
            f"The tag names '{','.join(bad_names)}' have reserved characters '<,>,%,&,\\,?,/' or control "
            "characters.",
        )
    for name, value in tags.items():
        if len(name) > MAX_TAG_NAME:
            raise errors.ArmError(
                400,
                "InvalidTagNameLength",
                f"The tag name '{name[:40]}...' exceeds the maximum length of '{MAX_TAG_NAME}' characters.",
            )
        if value is not None and len(str(value)) > MAX_TAG_VALUE:
            raise errors.ArmError(
                400,
                "InvalidTagValueLength",
                f"The tag value of tag '{name}' exceeds the maximum length of '{MAX_TAG_VALUE}' characters.",
            )


def check_vm_name(name: str) -> None:
    """A VM's resource name (Compute: 1-64, no Windows-forbidden characters, no trailing period/hyphen)."""
    if not 1 <= len(name) <= 64 or any(c in _WINDOWS_NAME_FORBIDDEN - {"_", "."} for c in name):
        raise errors.ArmError(
            400,
            "InvalidParameter",
            f"The VM name '{name}' is invalid. It can be up to 64 characters long and cannot contain special "
            "characters.",
            target="vmName",
        )
    if name.endswith((".", "-")) or name.startswith("_"):
        raise errors.ArmError(
            400,
            "InvalidParameter",
            f"The VM name '{name}' cannot begin with '_' or end with '.' or '-'.",
            target="vmName",
        )


def check_network_name(name: str) -> None:
    """Network's rule for NICs and public IPs (wording as Network sends it)."""
    if not _NETWORK_NAME.match(name):
        raise errors.ArmError(
            400,
            "InvalidResourceName",
            f"Resource name {name} is invalid. The name can be up to 80 characters long. It must begin with a "
            "word character, and it must end with a word character or with '_'. The name may contain word "
            "characters or '.', '-', '_'.",
        )


def check_windows_os_profile(os_profile: dict[str, Any], password: str | None) -> None:
    """computerName, adminUsername and adminPassword of a Windows VM (Compute's InvalidParameter)."""
    computer = os_profile.get("computerName")
    if computer is not None and (
        len(computer) > 15 or computer.isdigit() or any(c in _WINDOWS_NAME_FORBIDDEN for c in computer)
    ):
        raise errors.ArmError(
            400,
            "InvalidParameter",
            "Windows computer name cannot be more than 15 characters long, be entirely numeric, or contain the "
            "following characters: ` ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : . ' \" , < > / ?.",
            target="computerName",
        )
    username = os_profile.get("adminUsername")
    if username is not None and (
        username.lower() in DISALLOWED_USERNAMES or len(username) > 20 or username.endswith(".")
    ):
        raise errors.ArmError(
            400, "InvalidParameter", "The Admin Username specified is not allowed.", target="adminUsername"
        )
    if password is not None and not password_ok(password):
        raise errors.ArmError(400, "InvalidParameter", PASSWORD_MESSAGE, target="adminPassword")


def password_ok(password: str) -> bool:
    if not 8 <= len(password) <= 123 or password in DISALLOWED_PASSWORDS:
        return False
    if any(ord(c) < 32 for c in password):
        return False
    classes = (
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    return sum(classes) >= 3
