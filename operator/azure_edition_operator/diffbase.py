"""kopf's last-handled spec kept in this process's memory instead of an annotation on every object.

Why: kopf's ``AnnotationsDiffBaseStorage`` costs one extra Kubernetes write per object at create
(bench/README.md: 2 writes are the floor: the finalizer and one status write that already says Ready).
What it costs: after a restart kopf has no diff base, so every object is seen as *created* and the
reconcile handler (the same one that runs on resume) runs once per object: a pass that reads Azure
and writes nothing when nothing changed. A spec changed while the operator was down is handled by
that same pass. Objects' memory is dropped when they are deleted.
"""

from __future__ import annotations

from typing import Any

import kopf


class MemoryDiffBaseStorage(kopf.DiffBaseStorage):
    """The essence kopf diffs against, per object uid; ``ignored_prefixes`` hide our own bookkeeping
    annotations (kopf's progress, the driver's state) from change detection, as kopf's own marker does."""

    def __init__(self, *, ignored_prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.ignored_prefixes = tuple(p.rstrip("/") + "/" for p in ignored_prefixes)
        self._essences: dict[str, Any] = {}

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        annotations = (essence.get("metadata") or {}).get("annotations")
        if annotations:
            for key in [k for k in annotations if k.startswith(self.ignored_prefixes)]:
                del annotations[key]
        self.remove_empty_stanzas(essence)
        return essence

    def fetch(self, *, body: Any) -> Any | None:
        return self._essences.get(_uid(body))

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        """Remember, write nothing (``patch`` is left as it is)."""
        uid = _uid(body)
        if uid:
            self._essences[uid] = essence

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)

    def __len__(self) -> int:
        return len(self._essences)


def _uid(body: Any) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")
