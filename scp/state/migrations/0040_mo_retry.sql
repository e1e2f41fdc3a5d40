-- Mobile-originated SMS handled at least once ("nothing is lost"): the MO row is
-- committed on its own (the SMPP deliver_sm_resp waits for that commit, SMPP 3.4 §4.6.2), the
-- command runs in a second transaction that sets handled_at; a failed command leaves the row
-- unhandled and due again at next_attempt_at (exponential backoff, scp/state/outbox.py).
ALTER TABLE sms_mo
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error      text;

DROP INDEX IF EXISTS sms_mo_pending_idx;
CREATE INDEX sms_mo_due_idx ON sms_mo (next_attempt_at) WHERE handled_at IS NULL;
