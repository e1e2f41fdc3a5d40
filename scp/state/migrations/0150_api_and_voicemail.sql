-- 0150: the carrier integration API (clients, idempotency keys, bulk-load jobs) and the
-- voicemail lifecycle (recordings stored in PostgreSQL, the callee's notification mode).

-- The API is a channel of its own in the audit log (client name as the actor).
ALTER TABLE audit_log DROP CONSTRAINT audit_log_channel_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_channel_check
    CHECK (channel IN ('cli', 'oss', 'ivr', 'sms', 'web', 'operator', 'system', 'api'));

-- API clients and their bearer tokens. Only the SHA-256 of the token is kept: a token is 256
-- random bits, so no dictionary or brute-force search can invert the digest, and an unsalted
-- digest lets a request find its client by index in one lookup (scp/service/apitoken.py).
CREATE TABLE api_client (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64
                                       AND ltrim(lower(name), 'abcdefghijklmnopqrstuvwxyz0123456789_.-') = ''),
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    token_hint    text NOT NULL,                 -- the token's first characters, for `list`
    scopes        text[] NOT NULL CHECK (cardinality(scopes) > 0
                         AND scopes <@ ARRAY['provisioning', 'media', 'billing', 'read']),
    created_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
-- One live client per name; a revoked name may be reused.
CREATE UNIQUE INDEX api_client_name_uq ON api_client (name) WHERE revoked_at IS NULL;

-- Idempotency-Key of a POST: the response of the first request, replayed to a retry. Written in
-- the request's own transaction, so the effect and its remembered answer commit together; a
-- second request with the same key waits on the primary key until the first one commits.
CREATE TABLE api_idempotency (
    client_id      bigint NOT NULL REFERENCES api_client (id) ON DELETE CASCADE,
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_sha256 bytea NOT NULL,               -- method, path and body of the first request
    status         smallint NOT NULL,
    body           bytea NOT NULL,
    content_type   text NOT NULL,
    location       text,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (client_id, key)
);
CREATE INDEX api_idempotency_created_idx ON api_idempotency (created_at);

-- A bulk load posted to the API (POST /api/v1/imports): the same importer as
-- `mcn-scp subscriber import`; progress and the bad lines are read from here.
CREATE TABLE import_job (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('queued', 'running', 'loaded', 'rejected',
                                                 'failed')),
    skip_bad     boolean NOT NULL,
    size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
    lines_read   integer NOT NULL DEFAULT 0,
    result       jsonb,                          -- ImportResult.to_json() once finished
    error        text,
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz
);

-- Voice messages, whole. A caller's menu choice 2 writes the row first (duration 0, no audio:
-- expected); the deposit fills it in (or writes a new one). The recording is a bytea kept out
-- of line and uncompressed (STORAGE EXTERNAL: WAV / AMR do not compress anyway), so a ranged
-- read, substring(audio FROM n FOR m), fetches only the TOAST chunks it needs.
ALTER TABLE voicemail
    ADD COLUMN deposited_at timestamptz,
    ADD COLUMN content_type text CHECK (content_type IN ('audio/wav', 'audio/amr', 'audio/amr-wb')),
    ADD COLUMN size_bytes   integer CHECK (size_bytes >= 0),
    ADD COLUMN audio        bytea;
ALTER TABLE voicemail ALTER COLUMN audio SET STORAGE EXTERNAL;
-- the mailbox: deposited, not deleted, by id (the list's cursor order)
CREATE INDEX voicemail_mailbox_idx ON voicemail (callee, id)
    WHERE deposited_at IS NOT NULL AND deleted_at IS NULL;
-- the retention job walks by age
CREATE INDEX voicemail_recorded_idx ON voicemail (recorded_at);

-- How the callee hears of a new voice message (brief 2.1.6: 不通知 / 短信).
ALTER TABLE subscriber ADD COLUMN voicemail_notify text NOT NULL DEFAULT 'sms'
    CHECK (voicemail_notify IN ('sms', 'none'));
