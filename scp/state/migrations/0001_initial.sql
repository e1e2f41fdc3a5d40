-- 0001: the whole service's schema, so later work adds behaviour, not tables.
--
-- Numbers keep their spec spelling: MSISDN / callee / forward-to as E.164 international digits
-- (ITU-T E.164 §6: country code + national significant number, at most 15 digits, no '+'),
-- IMSI as E.212 digits (MCC + MNC + MSIN, at most 15). Number columns use COLLATE "C": they are
-- digit strings, byte order is the right order, and prefix LIKE can use the B-tree.
-- Enumerations are text + CHECK rather than ENUM types so a later migration can widen one
-- inside a transaction. CHECKs use ltrim(x, digits) = '' rather than regexes: same rule, and
-- a bulk load of 1M rows is seconds faster.

CREATE TABLE subscriber (
    msisdn              text COLLATE "C" PRIMARY KEY
                        CHECK (length(msisdn) BETWEEN 7 AND 15 AND ltrim(msisdn, '0123456789') = ''
                               AND msisdn NOT LIKE '0%'),
    imsi                text COLLATE "C" UNIQUE
                        CHECK (length(imsi) BETWEEN 6 AND 15 AND ltrim(imsi, '0123456789') = ''),
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'suspended', 'barred')),
    language            text NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    user_group          text NOT NULL DEFAULT 'default' CHECK (length(user_group) BETWEEN 1 AND 32),
    -- Only a salted slow hash ("scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>", scp/service/pin.py).
    pin_hash            text,
    pin_failed_attempts smallint NOT NULL DEFAULT 0 CHECK (pin_failed_attempts >= 0),
    pin_locked_at       timestamptz,
    -- sms: one SMS per missed call; digest: one summary SMS when present; none: record only.
    notify_mode         text NOT NULL DEFAULT 'sms' CHECK (notify_mode IN ('sms', 'digest', 'none')),
    forward_to          text COLLATE "C"
                        CHECK (length(forward_to) BETWEEN 7 AND 15
                               AND ltrim(forward_to, '0123456789') = ''),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriber_user_group_idx ON subscriber (user_group);

-- One row per (subscriber, service). Active on day D when start_date <= D and
-- (end_date IS NULL OR D < end_date); disabling sets end_date, re-enabling clears it.
CREATE TABLE subscription (
    msisdn      text COLLATE "C" NOT NULL
                REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    service     text NOT NULL CHECK (service IN ('missed-call', 'busy', 'delivery-receipt',
                                                 'voicemail', 'forwarding')),
    start_date  date NOT NULL DEFAULT current_date,
    end_date    date,
    PRIMARY KEY (msisdn, service),
    CHECK (end_date IS NULL OR end_date >= start_date)
);

-- Calls from `number` (kind exact) or from any number starting with it (kind prefix) are not
-- treated by the service for `owner`.
CREATE TABLE blacklist (
    owner       text COLLATE "C" NOT NULL
                REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    number      text COLLATE "C" NOT NULL
                CHECK (length(number) BETWEEN 1 AND 15 AND ltrim(number, '0123456789') = ''),
    kind        text NOT NULL DEFAULT 'exact' CHECK (kind IN ('exact', 'prefix')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, number, kind)
);

-- A call the switch could not complete (CAP/INAP EventReportBCSM tBusy / tNoAnswer).
CREATE TABLE missed_call (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    caller      text COLLATE "C",                 -- NULL: presentation restricted / unknown
    callee      text COLLATE "C" NOT NULL
                REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    occurred_at timestamptz NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('busy', 'not-reachable', 'no-answer')),
    cause       smallint,                         -- Q.850 busyCause when the switch sent one
    call_ref    text,                             -- TCAP otid / dialogue id / callReferenceNumber
    notified_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX missed_call_callee_idx ON missed_call (callee, occurred_at);
CREATE INDEX missed_call_pending_idx ON missed_call (callee) WHERE notified_at IS NULL;

-- The caller asked (IVR digit 1) to be told by SMS when the callee is reachable again.
CREATE TABLE callback_request (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    caller        text COLLATE "C" NOT NULL,
    callee        text COLLATE "C" NOT NULL
                  REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    missed_call_id bigint REFERENCES missed_call (id) ON DELETE SET NULL,
    notified_at   timestamptz
);
CREATE INDEX callback_request_pending_idx ON callback_request (callee) WHERE notified_at IS NULL;
-- At most one open request per caller/callee pair: asking twice is the same request.
CREATE UNIQUE INDEX callback_request_open_uq ON callback_request (caller, callee)
    WHERE notified_at IS NULL;

-- Last evidence that the subscriber is reachable (MAP AlertServiceCentre, NoteMM-Event, DLR).
CREATE TABLE presence (
    msisdn      text COLLATE "C" PRIMARY KEY
                REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    present     boolean NOT NULL,
    event_at    timestamptz NOT NULL,
    source      text NOT NULL CHECK (source IN ('alert-sc', 'note-mm-event', 'delivery-receipt',
                                                'call', 'operator')),
    detail      text
);

CREATE TABLE voicemail (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    callee       text COLLATE "C" NOT NULL
                 REFERENCES subscriber (msisdn) ON DELETE CASCADE ON UPDATE CASCADE,
    caller       text COLLATE "C",
    recorded_at  timestamptz NOT NULL,
    duration_s   integer NOT NULL CHECK (duration_s >= 0),
    media_uri    text NOT NULL,
    notified_at  timestamptz,
    listened_at  timestamptz,
    deleted_at   timestamptz
);
CREATE INDEX voicemail_callee_idx ON voicemail (callee, recorded_at);

-- Advertising text appended to notification SMS: the highest priority valid rule whose daily
-- window, caller prefixes and user groups match (empty array: any). window_end NULL is the end
-- of the day; window_end < window_start spans midnight.
CREATE TABLE ad_rule (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text            text NOT NULL CHECK (length(text) BETWEEN 1 AND 160),
    window_start    time NOT NULL DEFAULT '00:00',
    window_end      time,
    caller_prefixes text[] NOT NULL DEFAULT '{}',
    user_groups     text[] NOT NULL DEFAULT '{}',
    priority        integer NOT NULL DEFAULT 0,
    valid_from      timestamptz NOT NULL DEFAULT now(),
    valid_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);

-- Tariffs by call category and number prefix (longest prefix wins); money in the currency's
-- major unit (CNY).
CREATE TABLE rate (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_category text NOT NULL CHECK (call_category IN ('local', 'national', 'hmt', 'international')),
    prefix        text COLLATE "C" NOT NULL DEFAULT ''
                  CHECK (length(prefix) <= 15 AND ltrim(prefix, '0123456789') = ''),
    per_minute    numeric(12, 4) NOT NULL DEFAULT 0 CHECK (per_minute >= 0),
    per_sms       numeric(12, 4) NOT NULL DEFAULT 0 CHECK (per_sms >= 0),
    per_use       numeric(12, 4) NOT NULL DEFAULT 0 CHECK (per_use >= 0),
    monthly_fee   numeric(12, 4) NOT NULL DEFAULT 0 CHECK (monthly_fee >= 0),
    valid_from    date NOT NULL DEFAULT current_date,
    UNIQUE (call_category, prefix, valid_from)
);

-- Charging data records: one per charged event (forwarded call leg, notification SMS, fee).
CREATE TABLE cdr (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_type   text NOT NULL CHECK (record_type IN ('call', 'sms', 'voicemail', 'fee')),
    msisdn        text COLLATE "C" NOT NULL,       -- the served (charged) subscriber
    caller        text COLLATE "C",
    callee        text COLLATE "C",
    service       text,
    call_category text CHECK (call_category IN ('local', 'national', 'hmt', 'international')),
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    duration_s    integer CHECK (duration_s >= 0),
    charge        numeric(12, 4) NOT NULL DEFAULT 0,
    call_ref      text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cdr_started_at_idx ON cdr (started_at);
CREATE INDEX cdr_msisdn_idx ON cdr (msisdn, started_at);

-- Notification SMS waiting for / in SMPP submission. Senders claim due rows with
--   SELECT ... WHERE status IN ('queued', 'sending') AND next_attempt_at <= now()
--   ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT n
-- which the partial index below serves. A claimed row is 'sending' with next_attempt_at moved
-- to the end of its lease, so a row left behind by a crashed sender is claimed again later.
-- A temporary refusal puts the row back to 'queued' with a later next_attempt_at.
CREATE TABLE sms_outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key   text NOT NULL UNIQUE,
    destination       text COLLATE "C" NOT NULL,
    source            text COLLATE "C",
    text              text NOT NULL,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'sending', 'submitted', 'delivered', 'failed',
                                        'expired')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz,
    last_error        text,
    smsc_message_id   text,
    delivery_status   text,                       -- SMPP receipt stat: DELIVRD, UNDELIV, ...
    delivered_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_outbox_claim_idx ON sms_outbox (next_attempt_at)
    WHERE status IN ('queued', 'sending');
CREATE INDEX sms_outbox_smsc_id_idx ON sms_outbox (smsc_message_id)
    WHERE smsc_message_id IS NOT NULL;
CREATE INDEX sms_outbox_destination_idx ON sms_outbox (destination, created_at);

-- Every SMPP delivery receipt as received; one may overtake the commit of the submission it
-- reports, so the outbox row is matched from here too.
CREATE TABLE sms_receipt (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    smsc_message_id text NOT NULL,
    status          text NOT NULL,
    received_at     timestamptz NOT NULL
);
CREATE INDEX sms_receipt_smsc_id_idx ON sms_receipt (smsc_message_id);

-- Mobile-originated SMS to our service number (self-care commands channel).
CREATE TABLE sms_mo (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text COLLATE "C" NOT NULL,
    destination text COLLATE "C" NOT NULL,
    text        text NOT NULL,
    received_at timestamptz NOT NULL,
    handled_at  timestamptz
);
CREATE INDEX sms_mo_pending_idx ON sms_mo (received_at) WHERE handled_at IS NULL;

-- Every change, written in the same transaction as the change itself.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    channel     text NOT NULL CHECK (channel IN ('cli', 'oss', 'ivr', 'sms', 'web', 'operator',
                                                 'system')),
    actor       text NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_key  text NOT NULL,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_key, at);
