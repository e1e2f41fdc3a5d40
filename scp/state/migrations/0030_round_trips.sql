-- Call path in fewer round trips (measured by bench/calls.py).
--
-- A busy / no-answer / not-reachable call used to cost about ten statements (BEGIN, the
-- missed call, then scp.service.notifications.on_missed_call: recipient, advisory lock, open
-- busy SMS, count, ads, outbox row, mark, COMMIT). The decision (texts, ad choice, what to
-- mark) stays in Python and is taken on a forecast of the state it reads (what the InitialDP
-- and earlier calls of this process saw). mcn_record_missed_call is then ONE statement, hence
-- one implicit transaction: it takes on_missed_call's locks, reads the same state, and
--   * if it is the forecast, writes the decided rows: the missed call (already marked),
--     the HLR alert request, the outbox row or its new text;
--   * if not, writes nothing and returns the state it found: the caller decides again on it
--     and calls once more (or falls back to the transactional path).
-- The rows written are those on_missed_call writes, in one transaction. The count of an
-- aggregated SMS is read under the advisory lock BEFORE the call is inserted (plus one): the
-- lock is held from before this call's id is drawn, so no later call of the same caller can
-- have committed in between (on_missed_call inserts first and counts after, the same total).

-- The notification recipient (notify_store.load_recipient): services in force on p_day, sorted
-- so that the row's text form identifies the state the decision read; all NULL if none.
-- PL/pgSQL, not SQL: its plans are cached per session (a SQL function that cannot be inlined
-- is planned at every call).
CREATE OR REPLACE FUNCTION mcn_recipient(p_msisdn text, p_day date,
    OUT msisdn text, OUT language text, OUT user_group text, OUT notify_mode text,
    OUT status text, OUT services text[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT s.msisdn, s.language, s.user_group, s.notify_mode, s.status,
           coalesce(array_agg(u.service ORDER BY u.service)
                    FILTER (WHERE u.service IS NOT NULL), '{}')
      INTO msisdn, language, user_group, notify_mode, status, services
      FROM subscriber s LEFT JOIN subscription u ON u.msisdn = s.msisdn
           AND u.start_date <= p_day AND (u.end_date IS NULL OR p_day < u.end_date)
     WHERE s.msisdn = p_msisdn GROUP BY s.msisdn;
END
$$;

-- The ad rules valid at p_at (notify_store.active_ads), as one digest.
CREATE OR REPLACE FUNCTION mcn_ads_digest(p_at timestamptz) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT md5(coalesce(string_agg(a::text, E'\n' ORDER BY a.priority DESC, a.id), ''))
              FROM ad_rule a
             WHERE a.valid_from <= p_at AND (a.valid_until IS NULL OR p_at < a.valid_until));
END
$$;

-- p_known false: no forecast, only read the state. p_rcpt: the recipient's text form the
-- decision saw (NULL: no subscriber). p_prefix: key prefix of the caller's busy / no-answer
-- SMS (NULL for not-reachable). p_open_id / p_count / p_first: the open SMS the decision
-- updates (NULL: a new one), the count and first time its text was rendered with (this call
-- included). p_ads: digest of the ads the decision chose from (NULL: not consulted);
-- p_want_ads: return the ads with a state. p_text NULL: no SMS. p_outcome: the call's mark.
CREATE OR REPLACE FUNCTION mcn_record_missed_call(
    p_caller text, p_callee text, p_at timestamptz, p_reason text, p_cause smallint,
    p_call_ref text, p_day date, p_known boolean, p_rcpt text, p_hlr boolean,
    p_refresh interval, p_prefix text, p_open_id bigint, p_count bigint, p_first timestamptz,
    p_ads text, p_want_ads boolean, p_text text, p_not_before timestamptz,
    p_expires timestamptz, p_outcome text,
    OUT done boolean, OUT missed_call_id bigint, OUT sms_id bigint, OUT hlr_alert boolean,
    OUT rcpt text, OUT language text, OUT user_group text, OUT notify_mode text,
    OUT status text, OUT services text[], OUT open_id bigint, OUT open_key text,
    OUT open_due timestamptz, OUT n bigint, OUT first_at timestamptz, OUT ads ad_rule[],
    OUT ads_digest text)
LANGUAGE plpgsql AS $$
DECLARE
    v_rows integer;
BEGIN
    done := false;
    hlr_alert := false;
    n := 0;
    SELECT CASE WHEN x.msisdn IS NULL THEN NULL ELSE x::text END, x.language, x.user_group,
           x.notify_mode, x.status, x.services
      INTO rcpt, language, user_group, notify_mode, status, services
      FROM mcn_recipient(p_callee, p_day) x;
    IF NOT p_known OR rcpt IS DISTINCT FROM p_rcpt THEN
        -- no (right) forecast: read the rest, unlocked, for the decision to be taken again
        IF rcpt IS NOT NULL AND p_prefix IS NOT NULL THEN
            SELECT o.id, o.idempotency_key, o.next_attempt_at INTO open_id, open_key, open_due
              FROM sms_outbox o
             WHERE o.destination = p_callee AND o.status = 'queued' AND o.attempts = 0
               AND left(o.idempotency_key, length(p_prefix)) = p_prefix
             ORDER BY o.id DESC LIMIT 1;
            IF open_id IS NOT NULL THEN
                SELECT count(*), min(m.occurred_at) INTO n, first_at FROM missed_call m
                 WHERE m.callee = p_callee AND m.caller IS NOT DISTINCT FROM p_caller
                   AND m.reason = p_reason
                   AND m.id >= regexp_replace(open_key, '^.*:', '')::bigint;
            END IF;
        END IF;
        IF p_want_ads THEN
            SELECT array_agg(a ORDER BY a.priority DESC, a.id) INTO ads FROM ad_rule a
             WHERE a.valid_from <= p_at AND (a.valid_until IS NULL OR p_at < a.valid_until);
            ads_digest := mcn_ads_digest(p_at);
        END IF;
        RETURN;
    END IF;
    IF p_text IS NOT NULL THEN
        -- notify_store.lock_open_busy_sms: the same advisory lock and row lock
        PERFORM pg_advisory_xact_lock(hashtext(p_prefix));
        SELECT o.id, o.idempotency_key, o.next_attempt_at INTO open_id, open_key, open_due
          FROM sms_outbox o
         WHERE o.destination = p_callee AND o.status = 'queued' AND o.attempts = 0
           AND left(o.idempotency_key, length(p_prefix)) = p_prefix
         ORDER BY o.id DESC LIMIT 1 FOR UPDATE;
        IF open_id IS NOT NULL THEN  -- notify_store.calls_since, this call not yet inserted
            SELECT count(*), min(m.occurred_at) INTO n, first_at FROM missed_call m
             WHERE m.callee = p_callee AND m.caller IS NOT DISTINCT FROM p_caller
               AND m.reason = p_reason
               AND m.id >= regexp_replace(open_key, '^.*:', '')::bigint;
        END IF;
        IF p_ads IS NOT NULL THEN
            ads_digest := mcn_ads_digest(p_at);
        END IF;
        IF open_id IS DISTINCT FROM p_open_id OR n + 1 <> p_count
           OR least(first_at, p_at) IS DISTINCT FROM p_first
           OR ads_digest IS DISTINCT FROM p_ads THEN
            IF p_want_ads THEN
                SELECT array_agg(a ORDER BY a.priority DESC, a.id) INTO ads FROM ad_rule a
                 WHERE a.valid_from <= p_at AND (a.valid_until IS NULL OR p_at < a.valid_until);
                ads_digest := mcn_ads_digest(p_at);
            END IF;
            RETURN;  -- nothing written: decide again on this state
        END IF;
    END IF;
    -- the missed call, already carrying the mark on_missed_call would give it
    INSERT INTO missed_call (caller, callee, occurred_at, reason, cause, call_ref, notified_at,
                             notify_outcome)
    VALUES (p_caller, p_callee, p_at, p_reason, p_cause, p_call_ref,
            CASE WHEN p_outcome IS NOT NULL THEN p_at END, p_outcome)
    RETURNING id INTO missed_call_id;
    IF p_hlr THEN  -- notify_store.request_hlr_alert
        INSERT INTO hlr_alert AS h (msisdn, requested_at, next_attempt_at)
        VALUES (p_callee, p_at, p_at)
        ON CONFLICT (msisdn) DO UPDATE SET status = 'pending', attempts = 0,
            requested_at = EXCLUDED.requested_at, next_attempt_at = EXCLUDED.requested_at,
            last_error = NULL, updated_at = now()
        WHERE h.status = 'failed' OR (h.status = 'registered'
              AND h.registered_at < EXCLUDED.requested_at - p_refresh);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        hlr_alert := v_rows = 1;
    END IF;
    IF p_text IS NOT NULL THEN
        IF open_id IS NOT NULL THEN  -- notify_store.update_sms_text
            UPDATE sms_outbox SET text = p_text, updated_at = now() WHERE id = open_id;
            sms_id := open_id;
        ELSE  -- notify_store.enqueue_sms
            INSERT INTO sms_outbox (idempotency_key, destination, source, text,
                                    next_attempt_at, expires_at)
            VALUES (p_prefix || missed_call_id, p_callee, NULL, p_text,
                    coalesce(p_not_before, now()), p_expires)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id INTO sms_id;
        END IF;
    END IF;
    done := true;
END
$$;
