-- A missed call is recorded once, even when its write is run again.
--
-- The call path (scp/flows/calls.py) writes a call's records within [database] budget and
-- retries when the attempt failed. When a connection dies while the commit is on its way (the
-- server restarted, a failover), the node cannot tell whether the commit happened. The
-- missed call carries its call's reference (node name and TCAP dialogue ID) and the time the
-- node took for the event, both fixed before the first attempt, and no two calls share both:
-- so a second attempt of a write that did commit fails on this index (unique_violation,
-- constraint missed_call_once) and rolls back whole, and the node takes the row already
-- there. A second attempt racing the first (still running on a slow server) waits on the
-- index for the first to end, then either finds its row or writes. The SMS, HLR alert and
-- callback rows of a missed call are written in its transaction: they are once too.
CREATE UNIQUE INDEX missed_call_once ON missed_call (call_ref, occurred_at)
    WHERE call_ref IS NOT NULL;
