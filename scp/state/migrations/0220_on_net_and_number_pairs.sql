-- 0220: rating as the brief describes it (scp/service/rating.py).
--
-- * The on-net category (网内, calls within the operator's own number ranges, [rating]
--   on_net_prefixes) beside local, national, hmt and international: every column naming a
--   call category accepts it.
-- * Rating by the pair of numbers (根据号码与转接号码): a tariff for calls from a range of the
--   paying subscriber's numbers to a range of destinations, e.g. one area's subscribers
--   forwarding to another area. The most specific pair wins; without one, the category table
--   (`rate`) rates the call as before.
ALTER TABLE rate DROP CONSTRAINT rate_call_category_check;
ALTER TABLE rate ADD CONSTRAINT rate_call_category_check
    CHECK (call_category IN ('on-net', 'local', 'national', 'hmt', 'international'));
ALTER TABLE rate_override DROP CONSTRAINT rate_override_call_category_check;
ALTER TABLE rate_override ADD CONSTRAINT rate_override_call_category_check
    CHECK (call_category IN ('on-net', 'local', 'national', 'hmt', 'international'));
ALTER TABLE cdr DROP CONSTRAINT cdr_call_category_check;
ALTER TABLE cdr ADD CONSTRAINT cdr_call_category_check
    CHECK (call_category IN ('on-net', 'local', 'national', 'hmt', 'international'));

-- origin_prefix: of the paying subscriber's number ('' any); destination_prefix: of the
-- number called or forwarded to ('' any). call_category NULL: the destination's category by
-- the rules. Money in CNY like `rate`.
CREATE TABLE rate_pair (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin_prefix      text COLLATE "C" NOT NULL
                       CHECK (length(origin_prefix) <= 15 AND ltrim(origin_prefix, '0123456789') = ''),
    destination_prefix text COLLATE "C" NOT NULL
                       CHECK (length(destination_prefix) <= 15
                              AND ltrim(destination_prefix, '0123456789') = ''),
    call_category      text CHECK (call_category IN ('on-net', 'local', 'national', 'hmt',
                                                     'international')),
    per_minute         numeric(12, 4) NOT NULL DEFAULT 0 CHECK (per_minute >= 0),
    per_use            numeric(12, 4) NOT NULL DEFAULT 0 CHECK (per_use >= 0),
    valid_from         date NOT NULL,
    UNIQUE (origin_prefix, destination_prefix, valid_from)
);
