-- The missed calls of one pass of the node's event loop in one statement (one commit).
--
-- Under load the EventReportBCSMs of several calls arrive in one TCP read and their calls ask
-- for their missed calls to be written in the same pass (scp/flows/calls.py,
-- _MissedCallWrites). One mcn_record_missed_call (migration 0030) per call was one statement
-- and one commit per call; this runs it for each element of the arrays, in their order, in
-- ONE statement, hence one transaction and one WAL flush for all of them. Each element gets
-- the row mcn_record_missed_call gives it, with its index in the arrays (from 1): done with
-- its ids, or the state found when its forecast was wrong (nothing of that call written; the
-- caller decides again, as for a lone call). An error fails the whole statement and writes
-- nothing: the caller then writes each call on its own.
--
-- The node sends the elements ordered by callee then key prefix (scp.state.notify_store
-- record_missed_calls), so every batch takes its locks (the prefix's advisory lock and open
-- SMS, the callee's hlr_alert row) in the same order and two batches cannot deadlock.
CREATE FUNCTION mcn_record_missed_calls(
    p_caller text[], p_callee text[], p_at timestamptz[], p_reason text[], p_cause smallint[],
    p_call_ref text[], p_day date[], p_known boolean[], p_rcpt text[], p_hlr boolean[],
    p_refresh interval, p_prefix text[], p_open_id bigint[], p_count bigint[],
    p_first timestamptz[], p_ads text[], p_want_ads boolean, p_text text[],
    p_not_before timestamptz[], p_expires timestamptz[], p_outcome text[])
RETURNS TABLE (i integer, done boolean, missed_call_id bigint, sms_id bigint,
    hlr_alert boolean, rcpt text, language text, user_group text, notify_mode text,
    status text, services text[], open_id bigint, open_key text, open_due timestamptz,
    n bigint, first_at timestamptz, ads ad_rule[], ads_digest text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR k IN 1 .. coalesce(cardinality(p_callee), 0) LOOP
        RETURN QUERY SELECT k, r.* FROM mcn_record_missed_call(
            p_caller[k], p_callee[k], p_at[k], p_reason[k], p_cause[k], p_call_ref[k],
            p_day[k], p_known[k], p_rcpt[k], p_hlr[k], p_refresh, p_prefix[k], p_open_id[k],
            p_count[k], p_first[k], p_ads[k], p_want_ads, p_text[k], p_not_before[k],
            p_expires[k], p_outcome[k]) r;
    END LOOP;
END
$$;
