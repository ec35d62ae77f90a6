"""An alternative SMB over QUIC port in the guest: what to change to match the spec (pure).

``spec.smbOverQuic.alternativePort`` declared: the guest's QUIC alternative ports must be exactly that one
(others are removed: the spec is the whole list, as for client access). Not declared: the operator leaves
the guest's alternative ports alone (it does not know which were its own), and says so in the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .smb_guest import GuestState


@dataclass(frozen=True)
class PortPlan:
    add: tuple[int, ...]
    remove: tuple[int, ...]

    def parameters(self) -> dict[str, str]:
        """The smb-alternative-port script's parameters."""
        return {"Add": ",".join(map(str, self.add)), "Remove": ",".join(map(str, self.remove))}

    def drift(self) -> str:
        """What differed, for the Event."""
        parts = [f"add QUIC port {p}" for p in self.add] + [f"remove QUIC port {p}" for p in self.remove]
        return ", ".join(parts)


def plan_ports(wanted: int | None, guest: GuestState) -> PortPlan | None:
    """What to change in the guest (None: it already matches, or nothing is declared)."""
    if wanted is None:
        return None
    have = set(guest.alternative_quic_ports)
    if have == {wanted}:
        return None
    return PortPlan(add=() if wanted in have else (wanted,), remove=tuple(sorted(have - {wanted})))


def served_ports(port: int, guest: GuestState | None) -> list[int]:
    """The UDP ports SMB over QUIC is served on, as the guest last said: the listener's and its alternates."""
    alternates = guest.alternative_quic_ports if guest is not None else ()
    return [port, *(p for p in alternates if p != port)]


def ports_served(
    port: int, main: object, alternative: int | None, alt: object | None
) -> tuple[list[int], str]:
    """``status.smbOverQuic.ports`` (the UDP ports whose probe got a certificate) and a note for the
    condition's message when the alternative port did not answer (it does not change the condition: the
    main port is what the certificate check judges)."""
    from .smb_certificate import CertificateObservation, EndpointUnreachable

    served = [port] if isinstance(main, CertificateObservation) else []
    if alternative is None or alternative == port:
        return served, ""
    if isinstance(alt, CertificateObservation):
        return [*served, alternative], ""
    why = alt.error if isinstance(alt, EndpointUnreachable) else "not probed (no address yet)"
    return served, f"alternative port {alternative}/udp does not answer: {why}"
