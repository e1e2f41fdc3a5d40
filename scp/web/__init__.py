"""The one HTTP application: subscriber portal, operator console, carrier API, health, metrics.

Everything here is HTTP glue over the same flows every other channel calls (IVR, SMS, CLI):
a page or an API call loads through a flow, the flow decides with ``scp.service`` and writes
with ``scp.state``; nothing here decides on its own (ARCHITECTURE §2, one service layer).
"""
