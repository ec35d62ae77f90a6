"""Who may read ``/metrics``: the API server decides, as controller-runtime's secure metrics do
(https://book.kubebuilder.io/reference/metrics.html): the scraper's bearer token is authenticated with a
TokenReview, then the user it names must be allowed ``get`` on the non-resource URL ``/metrics`` by a
SubjectAccessReview (RBAC: ClusterRole ``azure-edition-operator-metrics-reader``).

Pure parts only: the request bodies, reading the answers, the decision cache and the order of the two
questions. ``metrics_server`` sends the reviews and serves the page.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

METRICS_PATH = "/metrics"

# Decisions are cached briefly so that a scrape every 30 s costs the API server no review at all,
# while a revoked RoleBinding or a deleted ServiceAccount takes effect within a minute.
# (controller-runtime caches an authenticated token 1 min and an allowed decision 5 min.)
AUTHENTICATED_TTL = 60.0
ALLOWED_TTL = 60.0
DENIED_TTL = 10.0  # a refusal is cached too, shorter: a scraper just granted access waits little
CACHE_SIZE = 1024  # entries per cache: random tokens cannot grow the operator's memory


class Verdict(enum.IntEnum):
    """The HTTP status the request gets."""

    OK = 200
    UNAUTHENTICATED = 401  # no bearer token, or one the API server does not accept
    FORBIDDEN = 403  # a valid token whose user may not `get` /metrics
    UNAVAILABLE = 503  # the API server could not be asked; the scraper tries again


@dataclass(frozen=True)
class User:
    """The user a TokenReview names (what the SubjectAccessReview asks about)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1); None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def token_review(token: str) -> dict[str, Any]:
    """The TokenReview to create (authentication.k8s.io/v1); no audiences: the API server's own."""
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def reviewed_user(review: Mapping[str, Any]) -> User | None:
    """The user of an answered TokenReview, or None when the API server did not authenticate the token."""
    status = review.get("status") or {}
    user = status.get("user") or {}
    if status.get("authenticated") is not True or not user.get("username"):
        return None
    extra = tuple(sorted((k, tuple(v or ())) for k, v in (user.get("extra") or {}).items()))
    return User(str(user["username"]), str(user.get("uid") or ""), tuple(user.get("groups") or ()), extra)


def access_review(user: User, path: str = METRICS_PATH, verb: str = "get") -> dict[str, Any]:
    """The SubjectAccessReview to create: may ``user`` (with its groups and extras) ``verb`` the URL ``path``."""
    spec: dict[str, Any] = {
        "user": user.username,
        "groups": list(user.groups),
        "nonResourceAttributes": {"path": path, "verb": verb},
    }
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def allowed(review: Mapping[str, Any]) -> bool:
    """An answered SubjectAccessReview's decision: allowed and not explicitly denied."""
    status = review.get("status") or {}
    return status.get("allowed") is True and status.get("denied") is not True


def token_key(token: str) -> str:
    """The cache key of a token: its SHA-256, so the cache holds no usable credential."""
    return hashlib.sha256(token.encode()).hexdigest()


K = TypeVar("K")
V = TypeVar("V")


@dataclass
class TTLCache(Generic[K, V]):
    """A bounded map whose entries expire; the clock is the caller's (``now``), so it is tested without time."""

    size: int = CACHE_SIZE
    _entries: OrderedDict[K, tuple[float, V]] = field(default_factory=OrderedDict)

    def get(self, key: K, now: float) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if now >= expires:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: K, value: V, ttl: float, now: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (now + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)  # the oldest entry goes first

    def __len__(self) -> int:
        return len(self._entries)


Review = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]
"""Create a review object and return the API server's answer (the shell: ``metrics_server``)."""


class ReviewFailed(Exception):
    """The API server could not answer a review (unreachable, 5xx, the operator lacks the RBAC)."""


@dataclass
class Gate:
    """Authentication then authorization for one request, with both decisions cached."""

    review_token: Review
    review_access: Review
    path: str = METRICS_PATH
    users: TTLCache[str, User | None] = field(default_factory=TTLCache)
    decisions: TTLCache[User, bool] = field(default_factory=TTLCache)

    async def check(self, authorization: str | None, now: float) -> Verdict:
        token = bearer_token(authorization)
        if token is None:
            return Verdict.UNAUTHENTICATED
        key = token_key(token)
        hit, user = self.users.get(key, now)
        if not hit:
            try:
                user = reviewed_user(await self.review_token(token_review(token)))
            except ReviewFailed:
                return Verdict.UNAVAILABLE
            self.users.put(key, user, AUTHENTICATED_TTL if user else DENIED_TTL, now)
        if user is None:
            return Verdict.UNAUTHENTICATED
        hit, ok = self.decisions.get(user, now)
        if not hit:
            try:
                ok = allowed(await self.review_access(access_review(user, self.path)))
            except ReviewFailed:
                return Verdict.UNAVAILABLE
            self.decisions.put(user, ok, ALLOWED_TTL if ok else DENIED_TTL, now)
        return Verdict.OK if ok else Verdict.FORBIDDEN
