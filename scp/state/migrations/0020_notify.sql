-- 0020: notification bookkeeping (subscriber present over MAP, missed-call SMS).
--
-- hlr_alert: a callee the HLR must alert us for. After a missed call to an absent subscriber
-- the SCP sends MAP SendRoutingInfoForSM then ReportSM-DeliveryStatus (3GPP TS 29.002 §12.3,
-- §12.4; TS 23.040 §10.2) so the HLR puts our SC address in the subscriber's message waiting
-- data and sends AlertServiceCentre (§12.5) when the subscriber is back. One row per callee;
-- MAP originators on any node claim due rows with FOR UPDATE SKIP LOCKED; 'in-progress' moves
-- next_attempt_at to the end of a lease so a row left by a crashed node is taken again.
CREATE TABLE hlr_alert (
    msisdn          text COLLATE "C" PRIMARY KEY
                    REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in-progress', 'registered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    requested_at    timestamptz NOT NULL,           -- the missed call that asked for it
    registered_at   timestamptz,                    -- the HLR accepted ReportSM-DeliveryStatus
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hlr_alert_due_idx ON hlr_alert (next_attempt_at)
    WHERE status IN ('pending', 'in-progress');

-- What became of a missed call's notification; notified_at is when that was decided.
-- queued: in an outbox SMS; expired: older than [service].window_hours when the callee came
-- back; suppressed: no active service or notify_mode 'none'.
ALTER TABLE missed_call ADD COLUMN notify_outcome text
    CHECK (notify_outcome IN ('queued', 'expired', 'suppressed'));
