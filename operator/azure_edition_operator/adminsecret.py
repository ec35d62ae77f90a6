"""The VM admin Secret's values, checked against Azure's rules before they go anywhere.

Why here and not in Azure's error: Azure's refusal arrives after a create was attempted, and an
undecodable value used to raise a traceback (whose text could carry the bytes). Every problem is a
message that names the key and the rule, never the value.

Azure's rules for a Windows VM's administrator (learn.microsoft.com/azure/virtual-machines/windows/faq,
"What are the password requirements when creating a VM?" and "username requirements"): a password
of 12-123 characters meeting 3 of 4 classes (lower, upper, digit, special) and not one of a few
well-known values; a username of at most 20 characters, not ending in '.', not a reserved name.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

PASSWORD_MIN, PASSWORD_MAX = 12, 123
USERNAME_MAX = 20
DISALLOWED_PASSWORDS = frozenset(
    {"abc@123", "p@$$w0rd", "p@ssw0rd", "p@ssword123", "pa$$word", "pass@word1", "password!", "password1",
     "password22", "iloveyou!"}
)  # fmt: skip
RESERVED_USERNAMES = frozenset(
    {"administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123", "a",
     "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner", "root",
     "server", "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5"}
)  # fmt: skip
_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[\W_]")


class AdminSecretProblem(ValueError):
    """The Secret's values break a rule; ``str`` names the key and the rule, never the value."""


def decode(data: Mapping[str, str], key: str) -> str:
    """A Secret ``data`` value as text, or a problem naming the key (not the bytes)."""
    try:
        return base64.b64decode(data[key], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise AdminSecretProblem(f"key '{key}' is not UTF-8 text (Azure needs a text {key})") from None


def password_problem(password: str) -> str | None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"key 'password' must be {PASSWORD_MIN}-{PASSWORD_MAX} characters (Azure's rule)"
    if sum(bool(re.search(c, password)) for c in _CLASSES) < 3:
        return (
            "key 'password' must contain 3 of: a lowercase letter, an uppercase letter, a digit, "
            "a special character (Azure's rule)"
        )
    if password.lower() in DISALLOWED_PASSWORDS:
        return "key 'password' is a value Azure refuses as too common; choose another"
    return None


def username_problem(username: str) -> str | None:
    if not username or len(username) > USERNAME_MAX or username.endswith("."):
        return f"key 'username' must be 1-{USERNAME_MAX} characters and not end with '.' (Azure's rule)"
    if not re.fullmatch(r"[^\\/\"\[\]:|<>+=;,?*@&\s]+", username):
        return "key 'username' must not contain spaces or any of \\ / \" [ ] : | < > + = ; , ? * @ & (Azure's rule)"
    if username.lower() in RESERVED_USERNAMES:
        return "key 'username' is a name Azure reserves (e.g. admin, administrator); choose another"
    return None


def admin_values(data: Mapping[str, str]) -> tuple[str, str]:
    """(username, password) from a Secret's ``data``, or ``AdminSecretProblem``."""
    username, password = decode(data, "username"), decode(data, "password")
    problem = username_problem(username) or password_problem(password)
    if problem:
        raise AdminSecretProblem(problem)
    return username, password
