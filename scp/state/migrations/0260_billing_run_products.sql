-- A billing run's totals per product, kept with its resume point.
--
-- Every chunk of `mcn-scp billing run` adds its records and their sum per product here in the
-- transaction that commits its fee rows and moves billing_run.after_msisdn, so the run's
-- summary (and a resumed run's) reads a few rows instead of grouping the month's fee records
-- again: over a million records that grouping was a tenth of the run. Months billed before
-- this migration get their totals from their fee records.
CREATE TABLE billing_run_product (
    month    date NOT NULL REFERENCES billing_run (month),
    service  text NOT NULL,
    records  bigint NOT NULL CHECK (records >= 0),
    total    numeric(16, 4) NOT NULL,
    PRIMARY KEY (month, service)
);

INSERT INTO billing_run_product (month, service, records, total)
SELECT f.month, f.service, count(*), sum(f.charge)
  FROM monthly_fee f
 WHERE f.month IN (SELECT month FROM billing_run)
 GROUP BY f.month, f.service;
