"""The SIGTRAN stack as one sans-I/O object: M3UA (RFC 4666) -> SCCP (Q.714) -> TCAP (Q.774).

It only routes primitives between the three layer cores, as the Q.700-series layering does:
M3UA's ``Deliver(MTP-TRANSFER)`` goes to SCCP, SCCP's N-UNITDATA / N-NOTICE go to TCAP,
TCAP's N-UNITDATA requests go back down through SCCP to M3UA. What leaves the stack is either
for the transport adapter (:class:`Transmit`, :class:`CloseAssociation`), for the TC-user (the
TC primitives of :mod:`scp.primitives`) or worth a log line (everything else).

The live node, the pcap replay, the simulator and the benchmarks all drive this same object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from scp.core.m3ua_asp import (
    CloseAssociation,
    Deliver,
    M3uaEvent,
    M3uaLayer,
    M3uaOutput,
    Transmit,
)
from scp.core.sccp import SccpLayer, SccpLog, SccpOutput
from scp.core.tcap import ForwardToWorker, TcapLayer, TcapLog, TcapOutput
from scp.primitives import MtpTransfer, NNotice, NUnitdata, TcPrimitive

__all__ = ["SigtranStack", "StackOutput", "Transmit", "CloseAssociation"]

StackOutput = Transmit | M3uaEvent | SccpLog | TcapLog | ForwardToWorker | TcPrimitive
"""What leaves the stack: for the transport (Transmit, CloseAssociation), TC indications for the
TC-user, a message for a sibling worker's transaction (ForwardToWorker) and what is worth a log
line. The primitives between the layers (MTP-TRANSFER,
N-UNITDATA, N-NOTICE) never leave it."""


class SigtranStack:
    """M3UA + SCCP + TCAP wired together; every method returns the outputs that leave the stack."""

    def __init__(self, *, m3ua: M3uaLayer, sccp: SccpLayer, tcap: TcapLayer) -> None:
        self.m3ua = m3ua
        self.sccp = sccp
        self.tcap = tcap

    # -- inputs from the transport adapter -----------------------------------------------------

    def association_up(
        self, assoc_id: int, now: float, peer: str | None = None
    ) -> list[StackOutput]:
        """The transport connected ``assoc_id`` to the host ``peer`` (its IP address)."""
        return self._from_m3ua(self.m3ua.association_up(assoc_id, now, peer), now)

    def association_down(self, assoc_id: int, now: float) -> list[StackOutput]:
        return self._from_m3ua(self.m3ua.association_down(assoc_id, now), now)

    def receive(self, assoc_id: int, data: bytes, now: float, stream: int = 0) -> list[StackOutput]:
        """One whole M3UA message from association ``assoc_id``."""
        return self._from_m3ua(self.m3ua.receive(assoc_id, data, now, stream), now)

    def receive_forwarded(self, ind: NUnitdata, now: float) -> list[StackOutput]:
        """An N-UNITDATA indication a sibling worker received for one of our transactions
        (its :class:`~scp.core.tcap.ForwardToWorker`): into TCAP as if SCCP had delivered it,
        so the answer leaves on this worker's own associations."""
        return self._from_tcap(self.tcap.handle_n_unitdata(ind, now), now)

    def shutdown(self, now: float) -> list[StackOutput]:
        return self._from_m3ua(self.m3ua.shutdown(now), now)

    # -- inputs from the TC-user ---------------------------------------------------------------

    def tc_request(self, req: TcPrimitive, now: float) -> list[StackOutput]:
        """A TC request (TC-BEGIN/CONTINUE/END/U-ABORT/UNI) from the TC-user."""
        return self._from_tcap(self.tcap.handle_tc(req, now), now)

    # -- timers ----------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (
                self.m3ua.next_deadline(),
                self.sccp.next_deadline(),
                self.tcap.next_deadline(),
            )
            if d is not None
        ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> list[StackOutput]:
        out = self._from_m3ua(self.m3ua.handle_timer(now), now)
        out += self._from_sccp(self.sccp.handle_timer(now), now)
        out += self._from_tcap(self.tcap.handle_timer(now), now)
        return out

    # -- routing between the layers --------------------------------------------------------------

    def _from_m3ua(self, outputs: Iterable[M3uaOutput], now: float) -> list[StackOutput]:
        result: list[StackOutput] = []
        for o in outputs:
            match o:
                case Deliver():  # MTP-TRANSFER indication
                    sccp_out = self.sccp.handle_mtp_transfer(o.xfer, now)
                    result += self._from_sccp(sccp_out, now, o.assoc_id)
                case _:
                    result.append(o)
        return result

    def _from_sccp(
        self, outputs: Iterable[SccpOutput], now: float, assoc: int | None = None
    ) -> list[StackOutput]:
        """SCCP's outputs; ``assoc``: the association an indication arrived on (TCAP counts
        the dialogues each one opens against its share)."""
        result: list[StackOutput] = []
        for o in outputs:
            match o:
                case MtpTransfer():  # request, down to M3UA
                    result += self.m3ua.send_transfer(o, now)
                case NUnitdata():  # indication, up to TCAP
                    result += self._from_tcap(self.tcap.handle_n_unitdata(o, now, assoc), now)
                case NNotice():
                    result += self._from_tcap(self.tcap.handle_n_notice(o, now), now)
                case SccpLog():
                    result.append(o)
                case _:
                    assert_never(o)
        return result

    def _from_tcap(self, outputs: Iterable[TcapOutput], now: float) -> list[StackOutput]:
        result: list[StackOutput] = []
        for o in outputs:
            match o:
                case NUnitdata():  # request, down to SCCP
                    result += self._from_sccp(self.sccp.handle_n_unitdata(o, now), now)
                case _:
                    result.append(o)
        return result
