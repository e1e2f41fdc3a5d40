"""Tools around the node: pcap reading, replay, the network simulator and the demo.

They drive the same cores and TC-users as the node (from :mod:`scp.app`); the node never
imports them.
"""
