-- 0270: the monthly fee records reach the carrier's billing mediation as fee files beside the
-- CDR files (scp/flows/cdrfiles.py, docs/cdr-format.md), each month exactly once.
--
-- A month whose billing run is done goes into one fee file; billing_run.exported (0200, unused
-- until now) is set in the transaction that records the file, under the row lock of
-- cdr_export that serialises every export, so no month is recorded twice. Its records are the
-- month's monthly_fee rows, fixed once the run is done (and kept by retention), so the file
-- can be written again byte for byte. tx_lo / tx_hi are 0 for a fee file (no CDR range).
ALTER TABLE cdr_file ADD COLUMN kind text NOT NULL DEFAULT 'cdr' CHECK (kind IN ('cdr', 'fee'));
