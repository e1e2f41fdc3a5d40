"""The simulator's SIGTRAN side: one client-role stack (the node's own cores, RFC 4666 §4.3
ASP in client role) with a queue of TC indications per dialogue.

Every network element the simulator plays shares this one M3UA ASP, each on its own SCCP
subsystem (3GPP TS 23.003 §8.1): the gsmSSF/MSC and the gsmSRF on 146 (CAP), the HLR on 6 and
the VLR on 7 (MAP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from scp.adapters.driver import CoreDriver
from scp.app import build_stack
from scp.config import Config, parse_config
from scp.core.m3ua_asp import (
    AspStateChanged,
    AsStateChanged,
    CloseAssociation,
    Dropped,
    MtpStatus,
    OpcRefused,
    PeerNotify,
    Transmit,
)
from scp.core.sccp import SccpLog
from scp.core.stack import StackOutput
from scp.core.tcap import ForwardToWorker, TcapLog
from scp.primitives import (
    ApplicationContext,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcEnd,
    TcPrimitive,
    TcUAbort,
)

__all__ = [
    "SimPeer",
]


PEER_CONFIG = """
[node]
name = "sim"
worker_id = 9
[m3ua]
role = "client"
peers = ["127.0.0.1:1"]
routing_context = {rc}
local_pc = {pc}
pc_format = "{pcf}"
network_indicator = {ni}
beat_interval = 0
[sccp]
global_title = "8613900000"
default_dpc = {dpc}
[sccp.ssn]
cap = 146
map = 6
sc = 7
inap = 241
"""


class SimPeer:
    """The simulator's SIGTRAN side: one client-role stack, bytes in and out through callbacks.

    ``send_bytes`` carries M3UA messages to the SCP; :meth:`receive` takes the SCP's. TC
    indications go to the queue of their dialogue; a TC-BEGIN from the SCP (the SCP asking the
    HLR) goes to ``on_begin``.
    """

    def __init__(
        self,
        *,
        scp_pc: int = 100,
        local_pc: int = 200,
        routing_context: int = 1,
        network_indicator: int = 2,
        scp_ssn: Any = None,
        send_bytes: Callable[[bytes], None] | None = None,
        pc_format: str = "itu",
    ) -> None:

        self.cfg: Config = parse_config(
            PEER_CONFIG.format(
                rc=routing_context, pc=local_pc, ni=network_indicator, dpc=scp_pc, pcf=pc_format
            )
        )
        self.stack = build_stack(self.cfg)
        self.scp_pc = scp_pc
        self.local_pc = local_pc
        self.scp_ssn = scp_ssn
        self.send_bytes = send_bytes
        self.queues: dict[int, asyncio.Queue[object]] = {}
        self.on_begin: Callable[[TcBegin], None] | None = None
        self.active = asyncio.Event()
        self.assoc_id = 1
        self.driver: CoreDriver[StackOutput] = CoreDriver(
            self.stack, self._output, after=self._check_active
        )

    # -- transport side --------------------------------------------------------------------------

    def connected(self) -> None:
        self.driver.feed(lambda now: self.stack.association_up(self.assoc_id, now))

    def receive(self, data: bytes) -> None:
        self.driver.feed(lambda now: self.stack.receive(self.assoc_id, data, now))

    def disconnected(self) -> None:
        self.driver.feed(lambda now: self.stack.association_down(self.assoc_id, now))
        self.active.clear()

    def shutdown(self) -> None:
        """ASP Inactive and ASP Down toward the SCP (RFC 4666 §4.3.4.4, §4.3.4.2)."""
        self.driver.feed(self.stack.shutdown)

    def _output(self, o: StackOutput) -> None:
        match o:
            case Transmit():
                if self.send_bytes is not None:
                    self.send_bytes(o.data)
            case (
                CloseAssociation()
                | AspStateChanged()
                | AsStateChanged()
                | Dropped()
                | OpcRefused()
                | MtpStatus()
                | PeerNotify()
                | SccpLog()
                | TcapLog()
                | ForwardToWorker()
            ):
                pass  # the simulator has one association, no siblings and no log of its own
            case _:  # what remains is a TC indication (mypy: _indication takes exactly that)
                self._indication(o)

    def _indication(self, ind: TcPrimitive) -> None:
        q = self.queues.get(ind.dialogue_id)
        if q is not None:
            q.put_nowait(ind)
        elif type(ind) is TcBegin and self.on_begin is not None:
            self.queues[ind.dialogue_id] = asyncio.Queue()
            self.on_begin(ind)

    def _check_active(self) -> None:
        if self.stack.m3ua.is_active:
            self.active.set()

    # -- TC-user side ----------------------------------------------------------------------------

    def address(self, ssn: int) -> SccpAddress:
        return SccpAddress(ri=RoutingIndicator.SSN, pc=self.local_pc, ssn=ssn)

    def scp_address(self, ssn: int) -> SccpAddress:
        return SccpAddress(ri=RoutingIndicator.SSN, pc=self.scp_pc, ssn=ssn)

    def begin(
        self,
        *,
        called_ssn: int,
        calling_ssn: int,
        ac: ApplicationContext | None,
        components: tuple[Any, ...],
    ) -> int:
        """Open a dialogue toward the SCP (``ac`` None: no dialogue portion, as MAP v1)."""
        did = self.stack.tcap.new_dialogue_id()
        self.queues[did] = asyncio.Queue()
        self.request(
            TcBegin(
                dialogue_id=did,
                called=self.scp_address(called_ssn),
                calling=self.address(calling_ssn),
                application_context=ac,
                components=components,
            )
        )
        return did

    def request(self, prim: TcPrimitive) -> None:
        if isinstance(prim, (TcEnd, TcUAbort)):
            self.queues.pop(prim.dialogue_id, None)
        self.driver.feed(lambda now: self.stack.tc_request(prim, now))

    async def next(self, did: int, timeout: float) -> object | None:
        q = self.queues.get(did)
        if q is None:
            return None
        try:
            return await asyncio.wait_for(q.get(), timeout)
        except TimeoutError:
            return None

    def forget(self, did: int) -> None:
        self.queues.pop(did, None)

    def close(self) -> None:
        self.driver.close()
