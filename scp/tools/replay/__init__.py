"""Replay SIGTRAN captures (ARCHITECTURE §1, §3 ``mcn-scp replay``), one module per layer.

Network engineers test IN services by replaying captures from the live network against the lab
SCP:

* :mod:`~scp.tools.replay.ladder`: every message of the capture decoded down to its CAP, INAP
  or MAP operations and their key fields (``--decode-only``), shown by
  :mod:`~scp.tools.replay.output` as text or JSON lines;
* :mod:`~scp.tools.replay.offline`: the network side fed to an in-process SCP
  (:mod:`~scp.tools.replay.inprocess`, the same cores and TC-users as ``mcn-scp run``), our
  answers beside the capture's own;
* :mod:`~scp.tools.replay.live`: the network side sent as an M3UA ASP toward a running SCP;
* :mod:`~scp.tools.replay.feed`: what both of those change in a captured message so it reaches
  our SCP (transaction IDs, numbers, addresses), and a run's counts.

The ladder modules load no SCP: ``--decode-only`` starts without the node.
"""
