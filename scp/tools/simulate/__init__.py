"""Switch / HLR / VLR / media-server simulator: drives an SCP through the missed-call call flows.

For labs and load (ARCHITECTURE §3 ``mcn-scp simulate``, §4 call flows). One M3UA ASP (RFC 4666
§4.3, client role) carries every network element the SCP talks to, each on its own SCCP
subsystem (3GPP TS 23.003 §8.1): the gsmSSF/MSC and the gsmSRF on 146 (CAP, TS 29.078), the HLR
on 6 and the VLR on 7 (MAP, TS 29.002). The simulator runs the same cores as the SCP
(SigtranStack in client role) and reacts to what the SCP asks, as a switch would.

Scenarios: busy, not-reachable-then-present, no-answer, one per caller-menu choice (menu-sms,
menu-voicemail, menu-other-number, menu-operator), selfcare-pin, present-vlr; each declares
what it is about and gets a verdict. ``--calls N --concurrency C`` runs the busy call flow N
times, C at once, and reports rates and answer latencies.

One module per role: :mod:`~scp.tools.simulate.peer` (the client-role stack),
:mod:`~scp.tools.simulate.transports` (M3UA over TCP toward a running SCP, or an in-process
one), :mod:`~scp.tools.simulate.network` (what the network elements do),
:mod:`~scp.tools.simulate.scenarios` (what each scenario is about, and its verdict),
:mod:`~scp.tools.simulate.load` and :mod:`~scp.tools.simulate.captures` (the demo captures in
``pcaps/``).
"""
