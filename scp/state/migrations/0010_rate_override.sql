-- 0010: per-number call category overrides for rating (scp/service/rating.py).
--
-- A destination equal to `number` (kind exact), or starting with it (kind prefix, longest
-- wins), is rated in `call_category` whatever the prefix rules say: e.g. a neighbouring area
-- code billed as local, or a mobile number segment of the home province.
CREATE TABLE rate_override (
    number        text COLLATE "C" NOT NULL
                  CHECK (length(number) BETWEEN 1 AND 15 AND ltrim(number, '0123456789') = ''),
    kind          text NOT NULL DEFAULT 'exact' CHECK (kind IN ('exact', 'prefix')),
    call_category text NOT NULL
                  CHECK (call_category IN ('local', 'national', 'hmt', 'international')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (number, kind)
);
