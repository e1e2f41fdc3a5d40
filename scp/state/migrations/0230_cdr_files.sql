-- 0230: CDR files for the carrier's billing mediation, each record exported exactly once
-- across all nodes (scp/flows/cdrfiles.py, docs/cdr-format.md).
--
-- The watermark is a transaction horizon, not a record id: ids are drawn before commit, so a
-- record with a lower id can become visible after a higher one was exported. Each record
-- carries the id of the transaction that wrote it (txid_current(): 64 bits with the epoch, it
-- never wraps). An export, holding the row lock of cdr_export, takes the oldest transaction
-- still running (pg_snapshot_xmin): every transaction below it has ended, so the records with
-- tx in [high_tx, horizon) are all visible and final; they go into files and high_tx moves to
-- the horizon in the same transaction. A transaction left open somewhere only delays exports.
ALTER TABLE cdr ADD COLUMN tx bigint NOT NULL DEFAULT 0;  -- earlier records: the first export's
ALTER TABLE cdr ALTER COLUMN tx SET DEFAULT txid_current();
CREATE INDEX cdr_tx_idx ON cdr (tx);

CREATE TABLE cdr_export (
    stream      text PRIMARY KEY,
    high_tx     bigint NOT NULL DEFAULT 0,   -- records with a lower tx are in files
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO cdr_export (stream) VALUES ('cdr');

-- Every file made, enough to make it again byte for byte (`cdr export --period`): the records
-- started in [period_start, period_end) with tx in [tx_lo, tx_hi). written: renamed into place
-- by its node; a file committed here and not written (the node stopped in between) is written
-- by the next export.
CREATE TABLE cdr_file (
    name          text PRIMARY KEY,
    period        text NOT NULL,                 -- YYYYMMDD or YYYYMMDDHH, [notify] timezone
    seq           integer NOT NULL CHECK (seq >= 1),
    node          text NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    tx_lo         bigint NOT NULL,
    tx_hi         bigint NOT NULL,
    records       integer NOT NULL,
    sha256        text NOT NULL DEFAULT '',     -- of the record lines, set once written
    created_at    timestamptz NOT NULL,          -- the export's time, in the header
    written       boolean NOT NULL DEFAULT false,
    UNIQUE (period, seq)
);
