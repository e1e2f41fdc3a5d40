-- The claim (scp/state/outbox.py) reads due rows ORDER BY next_attempt_at, id. On an index of
-- next_attempt_at alone PostgreSQL has to sort every row sharing the first timestamp before
-- LIMIT applies (an incremental sort), and a burst queued in one transaction shares now():
-- each claim then sorted the whole remaining burst. With id in the key the claim reads exactly
-- the rows it takes, in index order. (Migrations run in one transaction: sms_outbox is locked
-- while the index is rebuilt, a moment for an outbox of normal size.)
DROP INDEX IF EXISTS sms_outbox_claim_idx;
CREATE INDEX sms_outbox_claim_idx ON sms_outbox (next_attempt_at, id)
    WHERE status IN ('queued', 'sending');
