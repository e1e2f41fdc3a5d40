-- Business time comes from the caller, never from the database's clock.
--
-- When a tariff, a service or an ad starts, when an SMS or an HLR registration is due and when
-- a callback was asked for are decided by the node (the event's time, or the CLI's "today" in
-- [notify].timezone) and passed in: the server's clock and time zone are not the node's, and
-- a test that fixes its time cannot move them. Without these defaults a write that forgets
-- to pass the time fails (NOT NULL) instead of quietly taking the server's date. What stays
-- server-side is audit time only: created_at, updated_at, audit_log.at, applied_at.
ALTER TABLE subscription     ALTER COLUMN start_date      DROP DEFAULT;
ALTER TABLE rate             ALTER COLUMN valid_from      DROP DEFAULT;
ALTER TABLE ad_rule          ALTER COLUMN valid_from      DROP DEFAULT;
ALTER TABLE callback_request ALTER COLUMN requested_at    DROP DEFAULT;
ALTER TABLE sms_outbox       ALTER COLUMN next_attempt_at DROP DEFAULT;
ALTER TABLE hlr_alert        ALTER COLUMN next_attempt_at DROP DEFAULT;
ALTER TABLE sms_mo           ALTER COLUMN next_attempt_at DROP DEFAULT;

-- mcn_record_missed_call (migration 0030) queued its SMS due at coalesce(p_not_before, now()):
-- due at the missed call's own time instead. Only that expression changes, so the function
-- is rewritten from its stored definition rather than restated here.
DO $$
DECLARE
    def text := pg_get_functiondef('mcn_record_missed_call'::regproc);
    fixed text := replace(def, 'coalesce(p_not_before, now())', 'coalesce(p_not_before, p_at)');
BEGIN
    IF fixed = def THEN
        RAISE EXCEPTION 'mcn_record_missed_call: expected coalesce(p_not_before, now())';
    END IF;
    EXECUTE fixed;
END
$$;
