"""``python -m azure_edition_simulator`` / ``azure-edition-armsim``: run the ARM simulator until signalled."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from . import throttle
from .server import SimulatorConfig, SimulatorServer
from .world import DEFAULT_CLIENT_ID, DEFAULT_LOCATION, DEFAULT_SUBSCRIPTION_ID, DEFAULT_TENANT_ID


def _bucket(value: str) -> throttle.BucketSpec:
    capacity, _, per_minute = value.partition("/")
    return throttle.BucketSpec(float(capacity), float(per_minute) / 60.0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-edition-armsim",
        description="Azure Resource Manager simulator (Compute, Network, identity) over HTTPS on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: random)")
    parser.add_argument("--state-dir", type=Path, help="keep CA, identity and world here (survives restarts)")
    parser.add_argument("--env-file", type=Path, help="write KEY=value client settings here")
    parser.add_argument("--provisioning-seconds", type=float, default=0.5, help="simulated LRO duration")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on LRO responses")
    parser.add_argument(
        "--quic-port", type=int, default=443, help="UDP port of the SMB over QUIC endpoints (0: random)"
    )
    parser.add_argument("--subscription-id", default=DEFAULT_SUBSCRIPTION_ID)
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", help="default: random (written to the env file)")
    parser.add_argument("--location", default=DEFAULT_LOCATION, help="region of the seeded resource group")
    parser.add_argument(
        "--tls-san",
        action="append",
        default=[],
        metavar="NAME",
        help="extra DNS name or IP for the serving certificate (repeatable), e.g. a Kubernetes Service name",
    )
    parser.add_argument(
        "--federated-credential",
        nargs=2,
        action="append",
        default=[],
        metavar=("ISSUER", "SUBJECT"),
        help="trust service-account tokens of this issuer and subject (audience api://AzureADTokenExchange) "
        "for the default app, e.g. https://127.0.0.1:6443 system:serviceaccount:NS:SA (repeatable)",
    )
    parser.add_argument(
        "--oidc-ca-file",
        type=Path,
        action="append",
        default=[],
        metavar="PEM",
        help="CA to fetch issuers' OIDC discovery and JWKS with, e.g. the cluster's ca.crt (repeatable)",
    )
    parser.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds")
    parser.add_argument(
        "--profile",
        choices=("instant", "azure"),
        default="instant",
        help="timing: instant (provisioning-seconds, retry-after) or azure (real durations, Retry-After "
        "10-35 s or absent)",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiply azure-profile durations (e.g. 0.05 in CI)"
    )
    parser.add_argument("--seed", type=int, help="seed for every random choice (deterministic runs)")
    parser.add_argument(
        "--consistency-rate",
        type=float,
        help="probability of a transient eventual-consistency answer (default: 0.02 with --profile azure, else 0)",
    )
    parser.add_argument("--no-policy", action="store_true", help="no Azure Policy model (set_policy refused)")
    parser.add_argument(
        "--guest-certificates-from-ca",
        action="store_true",
        help="issue the guests' SMB over QUIC certificates below the simulator's own CA (the state dir's "
        "ca.pem), so one trust bundle serves ARM's TLS and SMB over QUIC",
    )
    parser.add_argument("--no-throttling", action="store_true", help="never answer 429")
    parser.add_argument(
        "--control-token",
        default=os.environ.get("ARMSIM_CONTROL_TOKEN") or None,
        help="let non-loopback clients use the control API with 'Authorization: Bearer <token>' "
        "(default: $ARMSIM_CONTROL_TOKEN; without it the control API answers loopback clients only)",
    )
    for name, flag in (
        (throttle.SUBSCRIPTION_READS, "--throttle-subscription-reads"),
        (throttle.SUBSCRIPTION_WRITES, "--throttle-subscription-writes"),
        (throttle.VM_GET, "--throttle-vm-get"),
        (throttle.VM_UPDATE, "--throttle-vm-update"),
        (throttle.VM_GUEST_PATCH, "--throttle-vm-guest-patch"),
    ):
        default = throttle.ThrottleConfig().buckets[name]
        parser.add_argument(
            flag,
            type=_bucket,
            dest=name,
            metavar="CAPACITY/PER_MINUTE",
            help=f"bucket size and refill per minute (default {default.capacity:g}/{default.refill_per_second * 60:g})",
        )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    buckets = dict(throttle.ThrottleConfig().buckets)
    for name in list(buckets):
        spec = getattr(args, name, None)
        if spec is not None:
            buckets[name] = spec
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        env_file=args.env_file,
        provisioning_seconds=args.provisioning_seconds,
        retry_after_seconds=args.retry_after,
        throttling=throttle.ThrottleConfig(enabled=not args.no_throttling, buckets=buckets),
        quic_port=args.quic_port,
        subscription_id=args.subscription_id,
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        location=args.location,
        token_lifetime_seconds=args.token_lifetime,
        tls_hosts=tuple(args.tls_san),
        profile=args.profile,
        time_scale=args.time_scale,
        seed=args.seed,
        consistency_rate=args.consistency_rate,
        policy=not args.no_policy,
        guest_certificates_from_ca=args.guest_certificates_from_ca,
        federated_credentials=tuple((issuer, subject) for issuer, subject in args.federated_credential),
        oidc_ca_files=tuple(args.oidc_ca_file),
        control_token=args.control_token,
    )


async def serve(config: SimulatorConfig) -> None:
    """Run until SIGINT/SIGTERM."""
    # Signal handlers first: the env file (written by start()) tells callers we are up, and a
    # SIGTERM right after it must already mean "stop cleanly", not the default kill.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="armsim-") as tmp:
        server = SimulatorServer(config, tmp_dir=Path(tmp))
        await server.start()
        print(f"ARM simulator listening on {server.origin} (control: {server.control_url})", flush=True)
        if config.env_file:
            print(f"client settings written to {config.env_file}", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr)
    asyncio.run(serve(config_from_args(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
