-- 0200: products with price lists, the history of subscriptions, monthly fee records and the
-- billing run that writes them (scp/flows/billing.py, scp/service/billing.py).
--
-- Each subscription service is a product billed by the month (missed-call 来话提示 and busy
-- 遇忙提示 at 2 元 in the brief's example). Its price list is versioned by start date: the
-- price in force on a day is the row with the latest valid_from not after it.
CREATE TABLE product_price (
    service      text NOT NULL CHECK (service IN ('missed-call', 'busy', 'delivery-receipt',
                                                  'voicemail', 'forwarding')),
    valid_from   date NOT NULL,
    monthly_fee  numeric(12, 4) NOT NULL CHECK (monthly_fee >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, valid_from)
);

-- A tariff line's monthly_fee (migration 0001) was stored and never billed. It was meant for
-- the notification service, which is now two products: the fee becomes the price of both from
-- the same day (the highest, where lines of one day disagree). The column stays for the
-- readers of `rate`; billing reads product_price only.
INSERT INTO product_price (service, valid_from, monthly_fee)
SELECT p.service, r.valid_from, max(r.monthly_fee)
  FROM rate r CROSS JOIN (VALUES ('missed-call'), ('busy')) AS p (service)
 WHERE r.monthly_fee > 0
 GROUP BY p.service, r.valid_from;
COMMENT ON COLUMN rate.monthly_fee IS
    'not billed: monthly fees are product prices (product_price, migration 0200)';

-- The periods a subscription row no longer shows. The row of `subscription` is the current
-- period; when a later start replaces it (the service turned on again after it ended) or the
-- row goes (the subscriber deleted), the period it held is kept here, so a month is billed for
-- every day subscribed in it. Periods of one (msisdn, service) never overlap. No foreign key:
-- a deleted subscriber's last periods are still billed.
CREATE TABLE subscription_period (
    msisdn      text COLLATE "C" NOT NULL,
    service     text NOT NULL,
    start_date  date NOT NULL,
    end_date    date NOT NULL,
    PRIMARY KEY (msisdn, service, start_date),
    CHECK (end_date >= start_date)
);

-- Row triggers, firing only where a period can be lost: a start moved (UPDATE OF start_date),
-- a renumbered MSISDN (its history follows it) and a deleted row. Plain inserts, the bulk
-- path of an import, fire nothing. A deleted row still open has no end anyone told us: it is
-- dropped (scp.flows.provisioning.delete_subscriber ends the services on its day first).
CREATE FUNCTION mcn_subscription_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.end_date IS NOT NULL THEN
            INSERT INTO subscription_period (msisdn, service, start_date, end_date)
            VALUES (OLD.msisdn, OLD.service, OLD.start_date, OLD.end_date)
            ON CONFLICT (msisdn, service, start_date) DO UPDATE SET end_date = EXCLUDED.end_date;
        END IF;
        RETURN OLD;
    END IF;
    IF NEW.msisdn IS DISTINCT FROM OLD.msisdn THEN
        UPDATE subscription_period SET msisdn = NEW.msisdn
         WHERE msisdn = OLD.msisdn AND service = OLD.service;
    END IF;
    IF NEW.start_date > OLD.start_date THEN
        -- a new period begins: the one it replaces ends where it ended, at the latest where
        -- the new one begins
        INSERT INTO subscription_period (msisdn, service, start_date, end_date)
        VALUES (NEW.msisdn, NEW.service, OLD.start_date,
                least(coalesce(OLD.end_date, NEW.start_date), NEW.start_date))
        ON CONFLICT (msisdn, service, start_date) DO UPDATE SET end_date = EXCLUDED.end_date;
    ELSIF NEW.start_date < OLD.start_date THEN
        -- started earlier than it said: kept periods the current one now covers give way
        DELETE FROM subscription_period
         WHERE msisdn = NEW.msisdn AND service = NEW.service AND start_date >= NEW.start_date;
        UPDATE subscription_period SET end_date = NEW.start_date
         WHERE msisdn = NEW.msisdn AND service = NEW.service AND end_date > NEW.start_date;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER subscription_history
    AFTER UPDATE OF msisdn, start_date OR DELETE ON subscription
    FOR EACH ROW EXECUTE FUNCTION mcn_subscription_history();

-- One billing run per month (`mcn-scp billing run --month`). The node that holds the run's
-- advisory lock works; after_msisdn is how far it got: subscribers up to it are billed, each
-- chunk committed together with this row, so a run cut short resumes there (no duplicate, no
-- gap). proration is fixed by the first start, so a resumed run bills like the first part.
CREATE TABLE billing_run (
    month         date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    proration     text NOT NULL CHECK (proration IN ('daily', 'full')),
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    node          text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    after_msisdn  text COLLATE "C" NOT NULL DEFAULT '',
    records       bigint NOT NULL DEFAULT 0,
    total         numeric(16, 4) NOT NULL DEFAULT 0,
    exported      boolean NOT NULL DEFAULT false
);

-- The monthly fee of one product for one subscriber: the unique key is (month, msisdn,
-- service), so a rerun writes nothing twice. days: days subscribed in the month with a price
-- in force; fee: the list price of the first of them; charge: what is billed (fen).
CREATE TABLE monthly_fee (
    month       date NOT NULL,
    msisdn      text COLLATE "C" NOT NULL,
    service     text NOT NULL,
    days        smallint NOT NULL CHECK (days BETWEEN 1 AND 31),
    month_days  smallint NOT NULL CHECK (month_days BETWEEN 28 AND 31),
    fee         numeric(12, 4) NOT NULL,
    charge      numeric(12, 4) NOT NULL CHECK (charge >= 0),
    PRIMARY KEY (month, msisdn, service)
);
