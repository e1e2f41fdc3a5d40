"""The flows: load what a decision needs, call the pure decision (:mod:`scp.service`), write its
result in one transaction, then send (ARCHITECTURE §2).

One module per flow: :mod:`~scp.flows.calls` (CAP / INAP call handling), :mod:`~scp.flows.presence`
(MAP AlertServiceCentre / NoteMM-Event, the HLR alert registration), :mod:`~scp.flows.notify`
(missed call, presence and receipts -> notification SMS), :mod:`~scp.flows.smscmd` (SMS
commands), :mod:`~scp.flows.provisioning` (every channel's provisioning with its audit),
:mod:`~scp.flows.importer` (the OSS bulk load) and :mod:`~scp.flows.outbox` (the SMS sender and
the node's outbox hooks).
"""
