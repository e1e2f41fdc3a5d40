-- 0100: the web tier's state: operator accounts, sessions, login throttling, one-time codes.
--
-- Everything here is shared by every web process (`mcn-scp run` with [web] listen, any number of
-- `mcn-scp web`): nothing about a login lives in one process's memory. Times are written by the
-- caller (the web's wall clock, scp/adapters/clock.py), never the database's.

-- Staff of the operator console (人工坐席). The password is only a salted scrypt hash
-- (scp/service/webauth.py); `mcn-scp operator add NAME --role ...` reads it from stdin.
CREATE TABLE operator (
    name          text PRIMARY KEY
                  CHECK (length(name) BETWEEN 1 AND 32 AND name ~ '^[A-Za-z0-9_.-]+$'),
    role          text NOT NULL CHECK (role IN ('agent', 'supervisor')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A browser's session. The cookie carries a random token; only its SHA-256 is stored, so a
-- copy of this table opens no session. kind 'anonymous' holds the CSRF token and language of
-- a browser that has not logged in yet (the login forms are protected too); logging in
-- replaces it with a new session (a fixed session id is never promoted).
CREATE TABLE web_session (
    token_hash   text PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('anonymous', 'subscriber', 'operator')),
    subject      text,                    -- the MSISDN or the operator's name
    csrf         text NOT NULL,
    via          text CHECK (via IN ('pin', 'code', 'password')),  -- how it logged in
    created_at   timestamptz NOT NULL,
    seen_at      timestamptz NOT NULL,    -- last request (idle expiry)
    expires_at   timestamptz NOT NULL,    -- absolute expiry
    CHECK ((kind = 'anonymous') = (subject IS NULL))
);
CREATE INDEX web_session_expires_idx ON web_session (expires_at);
CREATE INDEX web_session_subject_idx ON web_session (kind, subject);

-- Failed logins and code requests, per key ("number:8613...", "address:10.0.0.7",
-- "operator:alice", "code:8613..."), counted over a sliding window to throttle guessing.
CREATE TABLE web_attempt (
    key  text NOT NULL,
    at   timestamptz NOT NULL
);
CREATE INDEX web_attempt_key_idx ON web_attempt (key, at);

-- The one-time code sent by SMS to a number that has no PIN, forgot it, or is not a
-- subscriber yet (self-enrolment). Only a hash of the code is kept; a code is good for a few
-- tries and minutes, and a new one replaces the old.
CREATE TABLE web_code (
    msisdn     text COLLATE "C" PRIMARY KEY
               CHECK (length(msisdn) BETWEEN 7 AND 15 AND ltrim(msisdn, '0123456789') = ''),
    code_hash  text NOT NULL,
    sent_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    tries      smallint NOT NULL DEFAULT 0 CHECK (tries >= 0)
);

-- The console's audit search: by time, by agent, by subscriber (entity_key has its index).
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (channel, actor, at);
-- The dashboard counts SMS per day of creation.
CREATE INDEX sms_outbox_created_idx ON sms_outbox (created_at);
CREATE INDEX missed_call_occurred_idx ON missed_call (occurred_at);
