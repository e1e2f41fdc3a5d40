-- 0210: the callback fee, once per callback request (scp/flows/billing.py).
--
-- The caller used to be charged when pressing 1, even for a request that expired unsent, and
-- again for each press. The fee is now written when the request's SMS is submitted (or
-- delivered, [billing] callback_fee_on), in the transaction that records that, with call_ref
-- 'callback:<request id>': this index makes it one per request whatever retries or nodes do.
-- (Fees written the old way carry the call's reference and stay as they are.)
CREATE UNIQUE INDEX cdr_callback_fee_uq ON cdr (call_ref)
    WHERE record_type = 'fee' AND service = 'callback' AND call_ref LIKE 'callback:%';
