"""Which Hotpatch calendar the checks use: the ConfigMap a team keeps in the operator's namespace, else the
built-in one (``hotpatch_calendar.BUILTIN``). The thin shell around ``hotpatch_calendar.parse_calendar``.

The ConfigMap lives in the operator's own namespace (tenants can neither write nor read it; RBAC grants
``get`` on that one name, deploy/base/rbac.yaml) and is read at most every ``TTL_SECONDS``. A missing one
means the built-in calendar; an unreadable or invalid one too, said in the operator's log each read (the
``HotpatchHealthy`` message names the calendar in use, with its source and date, on every VM).
"""

from __future__ import annotations

import logging

from kubernetes_asyncio.client.exceptions import ApiException

from .fresh import Fresh
from .hotpatch_calendar import BUILTIN, Calendar, CalendarError, parse_calendar

log = logging.getLogger(__name__)

TTL_SECONDS = 300.0
"""A team's edit reaches every VM's next check round within five minutes."""

CALENDARS: Fresh[Calendar] = Fresh(TTL_SECONDS)


async def calendar(core: object, namespace: str, name: str) -> Calendar:
    """The calendar in force: the ConfigMap ``namespace/name`` when it exists and parses, else BUILTIN."""
    if not name:
        return BUILTIN

    async def read() -> Calendar:
        try:
            config_map = await core.read_namespaced_config_map(name, namespace)  # type: ignore[attr-defined]
        except ApiException as err:
            if err.status == 404:
                log.debug("no Hotpatch calendar ConfigMap %s/%s: the built-in calendar", namespace, name)
            else:
                log.warning("cannot read the Hotpatch calendar ConfigMap %s/%s (HTTP %s): using the built-in "
                            "calendar (%s)", namespace, name, err.status, BUILTIN.describe())  # fmt: skip
            return BUILTIN
        try:
            found = parse_calendar(config_map.data or {})
        except CalendarError as err:
            log.warning("the Hotpatch calendar ConfigMap %s/%s is invalid (%s): using the built-in calendar (%s)",
                        namespace, name, err, BUILTIN.describe())  # fmt: skip
            return BUILTIN
        log.info("Hotpatch calendar from ConfigMap %s/%s: %s", namespace, name, found.describe())
        return found

    return await CALENDARS.get((namespace, name), read)
