"""Each simulator's own loopback block for its guests' addresses, claimed by binding.

Why: guests serve real SMB over QUIC on their (loopback) addresses. Two simulators on one machine that
both put guests on 127.0.100.x:443 see each other's endpoints, and a probe reports a stranger's
certificate. So every simulator takes a /16 ``127.X.0.0/16`` of its own: it proves the block unused by
binding a UDP claim socket on ``127.X.0.1:CLAIM_PORT`` (x.x.0.1 is never a guest address: Azure reserves
the first host addresses of a subnet) and holds that socket for its lifetime, so the next simulator's bind
fails and it moves on. It also binds the QUIC port on the block's first guest address once, to prove no
foreign listener sits there. Linux routes all of 127.0.0.0/8 to ``lo``, so no interface setup is needed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass

CLAIM_PORT = 47_443
FIRST_BLOCK = 32  # 127.0/16 and 127.1/16 are used by older worlds and the benchmark's fixed subnets
LAST_BLOCK = 254


@dataclass(frozen=True)
class Block:
    """``127.<octet>.0.0/16`` and the well-known parts of it."""

    octet: int

    @property
    def cidr(self) -> str:
        return f"127.{self.octet}.0.0/16"

    def subnet(self, index: int) -> str:
        """The ``index``-th /24 (1, 2: the seeded subnets; 10 on: subnets added without a prefix)."""
        return f"127.{self.octet}.{index}.0/24"

    @property
    def public_ip_pool(self) -> str:
        return f"127.{self.octet}.100.0/22"

    @property
    def claim_address(self) -> str:
        return f"127.{self.octet}.0.1"

    def contains(self, address: str) -> bool:
        try:
            return ipaddress.ip_address(address.split("/")[0]) in ipaddress.ip_network(self.cidr)
        except ValueError:
            return False

    @classmethod
    def parse(cls, cidr: str) -> Block:
        network = ipaddress.ip_network(cidr)
        if network.prefixlen != 16 or not network.is_loopback:
            raise ValueError(f"{cidr} is not a loopback /16 (127.X.0.0/16)")
        return cls(int(str(network.network_address).split(".")[1]))


class BlockTaken(OSError):
    pass


def _try_claim(block: Block, quic_port: int) -> socket.socket:
    claim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        claim.bind((block.claim_address, CLAIM_PORT))
    except OSError as exc:
        claim.close()
        raise BlockTaken(f"{block.cidr}: claim {block.claim_address}:{CLAIM_PORT} is bound ({exc})") from exc
    if quic_port:
        probe_address = str(list(ipaddress.ip_network(block.public_ip_pool).hosts())[3])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((probe_address, quic_port))
            except OSError as exc:
                claim.close()
                raise BlockTaken(f"{block.cidr}: {probe_address}:{quic_port}/udp is in use ({exc})") from exc
    return claim


def claim_block(quic_port: int, preferred: str | None = None) -> tuple[Block, socket.socket]:
    """An unused block and the socket that holds it (close it to release the block).

    ``preferred`` (a persisted world's block) is tried first; then blocks from a start that depends on
    the process id, so simulators started together rarely race for the same one.
    """
    candidates: list[Block] = []
    if preferred:
        candidates.append(Block.parse(preferred))
    span = LAST_BLOCK - FIRST_BLOCK + 1
    start = os.getpid() % span
    candidates += [Block(FIRST_BLOCK + (start + i) % span) for i in range(span)]
    reasons = []
    for block in candidates:
        try:
            return block, _try_claim(block, quic_port)
        except BlockTaken as exc:
            reasons.append(str(exc))
    raise BlockTaken("no unused loopback block for guest addresses: " + "; ".join(reasons[:3]))
