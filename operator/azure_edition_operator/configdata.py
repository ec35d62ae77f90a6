"""The JSON documents a platform team keeps in ConfigMaps of the operator's namespace (the Hotpatch
calendar, the rollout's rings): one reader, so each refuses a bad document the same way (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_object(data: Mapping[str, str], key: str, error: type[ValueError]) -> dict[str, Any]:
    """The JSON object under ``key`` of a ConfigMap's ``data``; ``error`` says what is wrong with it."""
    raw = data.get(key)
    if raw is None:
        raise error(f"the ConfigMap has no key {key}")
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise error(f"{key} is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise error(f"{key} must be a JSON object")
    return doc
