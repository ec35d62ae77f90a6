"""What a request handler needs: the world, the knobs, the request, and a place to put response headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors, throttle
from .world import Settings, World


@dataclass
class Reply:
    """A handler's answer: status, JSON body (None = empty) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestContext:
    """Per-request state shared by the provider modules."""

    world: World
    settings: Settings
    throttler: throttle.Throttler
    origin: str
    api_version: str
    query: dict[str, str]
    body: Any
    operation: str
    response_headers: dict[str, str] = field(default_factory=dict)

    def vm_token(self, kind: str, vm_resource_id: str) -> None:
        """Take a token from a per-VM Compute bucket, or raise Compute's 429."""
        decision = self.throttler.take(kind, vm_resource_id.lower())
        policy = throttle.COMPUTE_POLICY_NAMES[kind]
        if decision.allowed:
            self.response_headers["x-ms-ratelimit-remaining-resource"] = f"{policy};{decision.remaining}"
            return
        import datetime as dt
        import json

        now = dt.datetime.now(dt.UTC)
        window = {
            "operationGroup": policy.split("/")[-1],
            "startTime": now.isoformat(),
            "endTime": (now + dt.timedelta(seconds=decision.retry_after)).isoformat(),
            "allowedRequestCount": decision.capacity,
            "measuredRequestCount": decision.capacity + 1,
        }
        raise errors.ArmError(
            429,
            "OperationNotAllowed",
            "The server rejected the request because too many requests have been received for this subscription.",
            details=[
                {"code": "TooManyRequests", "target": window["operationGroup"], "message": json.dumps(window)}
            ],
            headers={
                "Retry-After": str(decision.retry_after),
                "x-ms-ratelimit-remaining-resource": f"{policy};0",
            },
        )

    def body_object(self) -> dict[str, Any]:
        """The JSON body as an object, or ARM's InvalidRequestContent."""
        if not isinstance(self.body, dict):
            raise errors.invalid_request_content(
                "The request content was invalid and could not be deserialized: 'expected a JSON object'."
            )
        return self.body
