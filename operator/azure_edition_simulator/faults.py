"""Fault injection and the request log, both driven through the control API.

A fault matches requests by HTTP method (``*`` = any), a regular expression searched in the path
(case-insensitive) and optionally the operation name (e.g. ``VirtualMachines_Get``). For its next
``times`` matches (``None`` = until removed) it adds latency, drops the connection without an answer,
or answers with a status code, an ARM error envelope (``code``/``message``) and extra headers
(e.g. ``Retry-After``). Faults apply to ARM and identity endpoints, never to the control API.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    409: "Conflict",
    412: "PreconditionFailed",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class Fault:
    """One injected fault."""

    id: str
    method: str
    path_regex: str
    operation: str | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_seconds: float = 0.0
    drop: bool = False
    times: int | None = 1
    details: list[dict[str, Any]] | None = None  # ARM error.details
    additional_info: list[dict[str, Any]] | None = None  # ARM error.additionalInfo
    hits: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex, re.IGNORECASE)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {
            "method",
            "pathRegex",
            "operation",
            "status",
            "code",
            "message",
            "headers",
            "latencySeconds",
            "drop",
            "times",
            "details",
            "additionalInfo",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; known: {sorted(known)}")
        status = data.get("status")
        if status is None and not data.get("drop") and not data.get("latencySeconds"):
            raise ValueError("a fault needs a status, drop=true or latencySeconds")
        return cls(
            id=str(uuid.uuid4()),
            method=str(data.get("method", "*")).upper(),
            path_regex=str(data.get("pathRegex", ".*")),
            operation=data.get("operation"),
            status=int(status) if status is not None else None,
            code=data.get("code"),
            message=data.get("message"),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            latency_seconds=float(data.get("latencySeconds", 0.0)),
            drop=bool(data.get("drop", False)),
            times=None if data.get("times", 1) is None else int(data.get("times", 1)),
            details=list(data["details"]) if data.get("details") is not None else None,
            additional_info=list(data["additionalInfo"]) if data.get("additionalInfo") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "pathRegex": self.path_regex,
            "operation": self.operation,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "headers": self.headers,
            "latencySeconds": self.latency_seconds,
            "drop": self.drop,
            "times": self.times,
            "details": self.details,
            "additionalInfo": self.additional_info,
            "hits": self.hits,
        }

    def matches(self, method: str, path: str, operation: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method.upper()):
            return False
        if self.operation and self.operation.lower() != operation.lower():
            return False
        return bool(self._pattern.search(path))

    def error_body(self) -> dict[str, Any]:
        status = self.status or 500
        code = self.code or DEFAULT_CODES.get(status, "InjectedFault")
        error: dict[str, Any] = {
            "code": code,
            "message": self.message or f"Injected fault ({status} {code}).",
        }
        if self.details is not None:
            error["details"] = self.details
        if self.additional_info is not None:
            error["additionalInfo"] = self.additional_info
        return {"error": error}


class FaultInjector:
    """The active faults, first match wins."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, data: dict[str, Any]) -> Fault:
        fault = Fault.from_dict(data)
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> bool:
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def clear(self) -> None:
        self.faults.clear()

    def take(self, method: str, path: str, operation: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path, operation):
                fault.hits += 1
                return fault
        return None


@dataclass
class OperationCounter:
    count: int = 0
    throttled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "throttled": self.throttled, "statuses": dict(self.statuses)}


class RequestLog:
    """Every ARM/identity request the simulator answered, plus per-operation counters."""

    def __init__(self, maxlen: int = 20000) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self.counters: dict[str, OperationCounter] = {}
        self.seq = 0

    def record(
        self,
        *,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        operation: str,
        client_id: str | None,
        error_code: str | None,
        fault: str | None,
        started: float,
    ) -> dict[str, Any]:
        self.seq += 1
        entry = {
            "seq": self.seq,
            "time": started,
            "method": method,
            "path": path,
            "query": query,
            "status": status,
            "operation": operation,
            "clientId": client_id,
            "errorCode": error_code,
            "fault": fault,
            "durationMs": round((time.monotonic() - started) * 1000, 2) if started else None,
        }
        entry["time"] = time.time()
        self.entries.append(entry)
        counter = self.counters.setdefault(operation, OperationCounter())
        counter.count += 1
        counter.statuses[str(status)] += 1
        if status == 429:
            counter.throttled += 1
        return entry

    def since(self, seq: int) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["seq"] > seq]

    def counters_dict(self) -> dict[str, Any]:
        return {
            "operations": {name: c.to_dict() for name, c in sorted(self.counters.items())},
            "throttledTotal": sum(c.throttled for c in self.counters.values()),
            "requestsTotal": sum(c.count for c in self.counters.values()),
        }

    def reset(self) -> None:
        self.entries.clear()
        self.counters.clear()
