"""The durable SMS outbox in PostgreSQL: ``scp.service.outbox.OutboxPort`` over ``sms_outbox``.

ARCHITECTURE §5: every node's sender claims due rows with ``FOR UPDATE SKIP LOCKED``, so N
senders share one outbox without handing out a row twice. A claimed row becomes ``sending``
with ``next_attempt_at`` moved to the end of a lease; if its sender dies, the row is due again
when the lease ends (at-least-once, see scp/service/outbox.py for the duplicate bound).
Status after SMPP 3.4 delivery receipts (Appendix B ``stat``): DELIVRD -> delivered,
EXPIRED -> expired, UNDELIV / REJECTD / DELETED -> failed; other values only update
``delivery_status``. A receipt that overtakes the ``mark_submitted`` commit is kept in
``sms_receipt`` and applied when the message id is recorded.

Batching (measured by bench/sms.py): one transaction per SMS and per receipt caps the
node far below the SMSC, so the two hot paths share round trips:

* ``claim`` reads ahead: one statement claims ``max(limit, claim_ahead)`` rows (and, at most
  once a second of ``now``, expires rows past their validity) and they are handed out from
  memory; when fewer than half are left the next batch is claimed in the background, so the
  sender never waits for a claim round trip. Rows held in memory were never submitted, so a
  crash only delays them until the lease ends (no duplicate). A held row older than half the
  lease, or past its ``expires_at``, is given back instead of handed out; ``flush()`` gives
  every held row back (``queued``, due when claimed, the claim's ``attempts`` undone).
* ``mark_submitted`` and ``record_receipt`` queue their work and return (resolve) when the
  group they joined is committed: one flusher waits ``flush_delay`` s (or until ``max_batch``
  items) and commits all of it in ONE transaction of one statement (``_GROUP``: submits
  ``UPDATE ... FROM unnest``, receipts ``INSERT ... SELECT FROM unnest`` and
  ``UPDATE ... FROM unnest``), plus the presence hook's own statements when a DELIVRD receipt
  of a subscriber is in it. An awaited call has therefore committed when it returns, exactly
  as before; only the number of transactions changed. One flusher per outbox serialises
  submits and receipts, so a receipt always finds its submit committed before it or is found
  by it (the early-receipt path), within a group as across groups. ``record_receipt`` is a
  plain method returning an awaitable whose item is queued at call time: the SMPP gateway
  calls it for a burst of receipts and awaits them one by one, and they still share one
  commit. If a group's transaction fails its items are retried one by one, so a single bad
  item (e.g. a failing presence hook) costs nobody else their commit; the failed item's
  awaitable raises.

Crash bound: a submit accepted by the SMSC whose mark is not yet committed is re-sent (once)
after the lease. The sender frees a window slot at submit_sm_resp and never has more than
``commit_window`` marks outstanding (scp/service/outbox.py), so one crash duplicates at most
``window + prefetch + commit_window`` SMS per sender (``22 * window`` with the defaults) and
loses none. Receipts: the gateway answers deliver_sm only after the receipt's group committed
(ESME_RX_T_APPN when its awaitable raises; scp/adapters/smpp.py), so a crash loses no receipt:
the SMSC delivers an unanswered one again.

:class:`NotifyingOutbox` is the store the node runs on: PgOutbox plus four hooks, injected by
its builder (:func:`scp.flows.outbox.build_outbox`), each called in the transaction that
records the SMPP event:

* ``on_charge(conn, [(idempotency_key, at)])`` for the SMS whose key starts with
  ``charge_prefix`` (callback SMS) once submitted (dated by the submit time the sender passes
  to ``mark_submitted``) or, with ``charge_on="delivered"``, once a DELIVRD receipt settles
  them (dated by the receipt): the caller's fee is written with the mark, in one commit;

* ``on_delivered(conn, destination, at)`` for a DELIVRD receipt of one of our SMS (called for
  subscribers only with ``subscribers_only``: the group statement tells which destinations are
  subscribers without a query per SMS);
* ``on_subscriber_receipt(conn, owner, destination, smsc_message_id, at)`` for the receipt of
  a subscriber's own SMS (checked against the outbox in the same transaction);
* ``on_mo(conn, mo_id, source, destination, text, at)``: a mobile-originated SMS is stored in
  ``sms_mo`` in a transaction of its own (``record_mo`` returns, and the gateway answers the
  deliver_sm, once that committed), then handed to the hook in a second transaction that also
  sets ``handled_at``: the command, its CDR, its reply and the mark commit together or not at
  all. The first attempt runs right after the MO's commit, in arrival order (a subscriber's
  ``QX`` then ``KT`` keep their order), bounded by ``mo_command_timeout`` s; its outcome does
  not change the deliver_sm answer. A failed (or timed out) command leaves the row unhandled,
  due again after an exponential backoff (``mo_retry_base`` doubling up to ``mo_retry_cap`` s;
  ``attempts``, ``last_error``, migration 0040); :meth:`NotifyingOutbox.run_mo_retry` re-scans
  due rows (and rows a crash left behind, ``mo_grace`` s after they arrived) every few
  seconds. The row is taken ``FOR UPDATE SKIP LOCKED`` and skipped once handled, so several
  nodes and the first attempt never run one command twice. An MO the hook leaves unhandled
  (not to the service number: no command) stays ``handled_at IS NULL`` and is never re-scanned
  (``next_attempt_at = 'infinity'``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from scp.service.outbox import OutboundSms

__all__ = [
    "ChargeHook",
    "DeliveredHook",
    "MoHook",
    "NotifyingOutbox",
    "PgOutbox",
    "SubscriberReceiptHook",
]

log = structlog.get_logger("scp.outbox")

_STATUS_OF = """CASE {stat} WHEN 'DELIVRD' THEN 'delivered' WHEN 'EXPIRED' THEN 'expired'
    WHEN 'UNDELIV' THEN 'failed' WHEN 'REJECTD' THEN 'failed' WHEN 'DELETED' THEN 'failed'
    ELSE o.status END"""

_RECEIPT_STATUS = _STATUS_OF.format(stat="$2::text").replace("o.status", "status")

# submits of one group: (id, smsc_message_id, submit time) triples
_SUBMIT = (
    "UPDATE sms_outbox o SET status = 'submitted', smsc_message_id = u.mid,"
    " last_error = NULL, updated_at = now()"
    " FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS u(id, mid, sat)"
    " WHERE o.id = ANY($1::bigint[]) AND o.id = u.id"
    " AND o.status NOT IN ('delivered', 'failed', 'expired')"
    " RETURNING o.id, o.destination, NULL::text AS stat, NULL::timestamptz AS at,"
    " o.idempotency_key AS key, u.sat"
)

# receipts that overtook the submits just recorded (latest receipt per message id)
_EARLY = (
    "UPDATE sms_outbox o SET delivery_status = r.status, delivered_at = r.received_at,"
    f" status = {_STATUS_OF.format(stat='r.status')}, updated_at = now()"
    " FROM (SELECT DISTINCT ON (smsc_message_id) smsc_message_id, status, received_at"
    "       FROM sms_receipt WHERE smsc_message_id = ANY($2::text[])"
    "       ORDER BY smsc_message_id, id DESC) r"
    " WHERE o.id = ANY($1::bigint[]) AND o.smsc_message_id = r.smsc_message_id"
    " AND o.status IN ('sending', 'submitted')"
    " RETURNING o.id, o.destination, r.status AS stat, r.received_at AS at,"
    " o.idempotency_key AS key, NULL::timestamptz AS sat"
)

_INSERT_RECEIPTS = (
    "INSERT INTO sms_receipt (smsc_message_id, status, received_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])"
)

_SUBMITTED = "'submitted'"  # the status of a submit without an early receipt

# Every UPDATE ... FROM unnest also names its rows with ``= ANY(array)``: the planner cannot
# size an unnest and otherwise picks a hash join over a sequential scan of the whole outbox.
# The whole group in ONE statement (one round trip inside the group's transaction), when no
# message id has two receipts in it. Data-modifying CTEs share one snapshot and may not touch a
# row twice, so a receipt whose submit is in the same group is applied by the submit's UPDATE
# (with the receipts already stored it picks the latest, as the per-SMS code did) and skipped
# by the receipts' UPDATE. Returns the rows settled (``d``: id, destination, receipt stat and
# time, idempotency key, submit time ``sat``) that the subclass's hooks want: ``presence``,
# DELIVRD rows passing ``settled_filter``; ``charge``, rows passing ``charge_filter``.
_GROUP = (
    "WITH rc AS (SELECT * FROM unnest($3::text[], $4::text[], $5::timestamptz[])"
    "   WITH ORDINALITY AS u(mid, stat, at, n)),"
    " ins AS (INSERT INTO sms_receipt (smsc_message_id, status, received_at)"
    "   SELECT mid, stat, at FROM rc ORDER BY n),"
    " sub AS (UPDATE sms_outbox o SET smsc_message_id = u.mid, last_error = NULL,"
    f"   status = {_STATUS_OF.format(stat='e.stat').replace('o.status', _SUBMITTED)},"
    "   delivery_status = coalesce(e.stat, o.delivery_status),"
    "   delivered_at = CASE WHEN e.stat IS NULL THEN o.delivered_at ELSE e.at END,"
    "   updated_at = now()"
    "  FROM unnest($1::bigint[], $2::text[], $6::timestamptz[]) AS u(id, mid, sat)"
    "  LEFT JOIN LATERAL (SELECT x.stat, x.at FROM ("
    "     SELECT status AS stat, received_at AS at, 0 AS src, id AS ord FROM sms_receipt"
    "      WHERE smsc_message_id = u.mid"
    "     UNION ALL SELECT rc.stat, rc.at, 1, rc.n FROM rc WHERE rc.mid = u.mid) x"
    "    ORDER BY x.src DESC, x.ord DESC LIMIT 1) e ON true"
    "  WHERE o.id = ANY($1::bigint[]) AND o.id = u.id"
    "   AND o.status NOT IN ('delivered', 'failed', 'expired')"
    "  RETURNING o.id, o.destination, e.stat, e.at, o.idempotency_key AS key, u.sat),"
    " app AS (UPDATE sms_outbox o SET delivery_status = rc.stat, delivered_at = rc.at,"
    f"   status = {_STATUS_OF.format(stat='rc.stat')}, updated_at = now()"
    "  FROM rc WHERE o.smsc_message_id = ANY($3::text[]) AND o.smsc_message_id = rc.mid"
    "   AND o.status IN ('sending', 'submitted') AND o.id <> ALL($1::bigint[])"
    "  RETURNING o.id, o.destination, rc.stat, rc.at, o.idempotency_key, NULL::timestamptz)"
    " SELECT d.*, (d.stat = 'DELIVRD' AND {presence}) AS presence, ({charge}) AS charge"
    " FROM (SELECT * FROM sub UNION ALL SELECT * FROM app) d"
    " WHERE (d.stat = 'DELIVRD' AND {presence}) OR ({charge})"
)

# one receipt per message id (see _rounds)
_APPLY_RECEIPTS = (
    "UPDATE sms_outbox o SET delivery_status = u.stat, delivered_at = u.at,"
    f" status = {_STATUS_OF.format(stat='u.stat')}, updated_at = now()"
    " FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(mid, stat, at)"
    " WHERE o.smsc_message_id = ANY($1::text[]) AND o.smsc_message_id = u.mid"
    " AND o.status IN ('sending', 'submitted')"
    " RETURNING o.id, o.destination, u.stat, u.at, o.idempotency_key AS key,"
    " NULL::timestamptz AS sat"
)


@dataclass(frozen=True)
class _Held:
    """A row claimed ahead and not handed out yet."""

    sms: OutboundSms
    claimed_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class _Submit:
    """A queued mark_submitted."""

    sms_id: int
    smsc_message_id: str
    done: asyncio.Future[None]
    at: datetime | None = None  # when the SMSC accepted it (a fee due on submission is dated so)


@dataclass(frozen=True)
class _Receipt:
    """A queued delivery receipt."""

    smsc_message_id: str
    status: str
    at: datetime
    done: asyncio.Future[None]


def _rounds(receipts: Sequence[_Receipt]) -> list[list[_Receipt]]:
    """Split receipts so no round names a message id twice: round k holds the k-th receipt of
    each id, so applying the rounds in order equals applying the receipts one by one."""
    rounds: list[list[_Receipt]] = []
    seen: dict[str, int] = {}
    for r in receipts:
        k = seen.get(r.smsc_message_id, 0)
        seen[r.smsc_message_id] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(r)
    return rounds


class PgOutbox:
    """``OutboxPort`` on PostgreSQL (plus ``enqueue`` for the notification service).

    ``claim_ahead`` rows are claimed per statement (0: exactly ``limit``); marks and receipts
    are committed in groups of up to ``max_batch`` gathered for ``flush_delay`` seconds.
    """

    SWEEP_INTERVAL = timedelta(seconds=1)
    settled_filter = "false"
    """Which DELIVRD rows settled by the group statement reach :meth:`_settled_by_receipt`
    (SQL over ``d``: id, destination, stat, at, key, sat); none here, the base class has no
    hook."""
    charge_filter = "false"
    """Which rows settled by the group statement reach :meth:`_charged` (SQL over ``d``)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        lease: timedelta = timedelta(minutes=5),
        claim_ahead: int = 256,
        flush_delay: float = 0.005,
        max_batch: int = 500,
    ) -> None:
        self.pool = pool
        self.lease = lease
        self.claim_ahead = claim_ahead
        self.flush_delay = flush_delay
        self.max_batch = max_batch
        self._held: collections.deque[_Held] = collections.deque()
        self._group_sql: str | None = None
        self._swept_at: datetime | None = None
        self._refill: asyncio.Task[None] | None = None
        self._more_due = False
        self._claim_lock = asyncio.Lock()
        self._submits: list[_Submit] = []
        self._receipts: list[_Receipt] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0  # group commits so far (tests, the bench)

    async def enqueue(
        self,
        destination: str,
        text: str,
        *,
        idempotency_key: str,
        now: datetime,
        source: str | None = None,
        expires_at: datetime | None = None,
        conn: asyncpg.Connection | None = None,
    ) -> int:
        """Queue an SMS once per idempotency key, due from ``now``; return its id. Pass
        ``conn`` to enqueue in the caller's transaction (e.g. together with marking the missed
        call notified)."""
        db = conn or self.pool
        sms_id = await db.fetchval(
            "INSERT INTO sms_outbox (idempotency_key, destination, source, text,"
            " next_attempt_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            idempotency_key,
            destination,
            source,
            text,
            now,
            expires_at,
        )
        if sms_id is None:
            sms_id = await db.fetchval(
                "SELECT id FROM sms_outbox WHERE idempotency_key = $1", idempotency_key
            )
        return int(sms_id)

    async def backlog(self, now: datetime) -> tuple[int, float]:
        """The outbox's depth (rows queued or being sent) and how long, in seconds at ``now``,
        the longest-waiting due row has been due (0 when none is due). Both read the claim
        index alone (``sms_outbox_claim_idx``): cheap enough for every metrics scrape."""
        row = await self.pool.fetchrow(
            "SELECT count(*) AS depth, min(next_attempt_at) AS oldest FROM sms_outbox"
            " WHERE status IN ('queued', 'sending')"
        )
        oldest = row["oldest"]
        age = (now - oldest).total_seconds() if oldest is not None and oldest <= now else 0.0
        return int(row["depth"]), age

    # -- claiming ------------------------------------------------------------------------------

    async def claim(self, limit: int, now: datetime) -> list[OutboundSms]:
        """Rows due at ``now``, marked 'sending', attempts incremented; at most ``limit``."""
        if limit <= 0:
            return []
        async with self._claim_lock:
            held = self._held
            # held rows too old to be safe (their lease could end while in the gateway) go
            # back to the table; they are held in claim order, so the oldest are in front
            cutoff = now - self.lease / 2
            stale: list[_Held] = []
            while held and held[0].claimed_at <= cutoff:
                stale.append(held.popleft())
            if len(held) < limit and self._refill is not None:
                await asyncio.shield(self._refill)  # the read-ahead is on its way: take it
            if len(held) < limit:
                want = max(limit - len(held), self.claim_ahead)
                rows = await self._claim_rows(want, now)
                self._more_due = len(rows) == want
                held.extend(rows)
            out: list[OutboundSms] = []
            while held and len(out) < limit:
                h = held.popleft()
                if h.expires_at is not None and h.expires_at <= now:
                    stale.append(h)  # past its validity: the next sweep expires it
                else:
                    out.append(h.sms)
            if stale:
                await self._give_back(stale)
            if (
                self._more_due
                and self._refill is None
                and self.claim_ahead > 0
                and len(held) < self.claim_ahead // 2
            ):
                # read ahead in the background: the sender never waits for a claim while
                # held rows last (it would leave window slots empty for a round trip)
                self._refill = asyncio.get_running_loop().create_task(self._read_ahead(now))
        return out

    async def _read_ahead(self, now: datetime) -> None:
        try:
            rows = await self._claim_rows(self.claim_ahead, now)
            self._more_due = len(rows) == self.claim_ahead
            self._held.extend(rows)
        except Exception as e:  # nothing claimed: the next claim() tries in the foreground
            self._more_due = False
            log.warning("sms.read_ahead_failed", error=repr(e))
        finally:
            self._refill = None

    async def _claim_rows(self, limit: int, now: datetime) -> list[_Held]:
        # one statement (one round trip, atomic): expire what is past its validity, claim the
        # rest; the two sets are disjoint (a row may be changed only once per statement). The
        # expiry sweep reads every due row, so it runs at most once per SWEEP_INTERVAL of
        # ``now``: rows past validity are never claimed in between, only marked later.
        sweep = (
            self._swept_at is None
            or now < self._swept_at
            or now - self._swept_at >= self.SWEEP_INTERVAL
        )
        if sweep:
            self._swept_at = now
        rows = await self.pool.fetch(
            (
                "WITH expired AS (UPDATE sms_outbox SET status = 'expired',"
                "  last_error = 'validity expired', updated_at = now()"
                "  WHERE status IN ('queued', 'sending') AND next_attempt_at <= $1"
                "  AND expires_at <= $1), "
                if sweep
                else "WITH "
            )
            + "due AS (SELECT id FROM sms_outbox WHERE status IN ('queued', 'sending')"
            "  AND next_attempt_at <= $1 AND (expires_at IS NULL OR expires_at > $1)"
            "  ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
            " UPDATE sms_outbox o SET status = 'sending', attempts = o.attempts + 1,"
            "  next_attempt_at = $1 + $3::interval, updated_at = now()"
            " WHERE o.id = ANY (ARRAY(SELECT id FROM due))"
            " RETURNING o.id, o.idempotency_key, o.destination, o.text, o.attempts,"
            "  o.expires_at",
            now,
            limit,
            self.lease,
        )
        rows = sorted(rows, key=lambda r: r["id"])
        return [
            _Held(
                OutboundSms(
                    r["id"], r["idempotency_key"], r["destination"], r["text"], r["attempts"]
                ),
                now,
                r["expires_at"],
            )
            for r in rows
        ]

    async def _give_back(self, held: Sequence[_Held]) -> None:
        """Unsent claimed rows back to 'queued', due when they were claimed, the claim undone.
        Only while still ours: same attempts and our lease (another sender may have re-claimed
        a row whose lease ended)."""
        if not held:
            return
        await self.pool.execute(
            "UPDATE sms_outbox o SET status = 'queued', attempts = o.attempts - 1,"
            " next_attempt_at = u.claimed_at, updated_at = now()"
            " FROM unnest($1::bigint[], $2::int[], $3::timestamptz[]) AS u(id, attempts,"
            "  claimed_at)"
            " WHERE o.id = ANY($1::bigint[]) AND o.id = u.id AND o.status = 'sending'"
            " AND o.attempts = u.attempts"
            " AND o.next_attempt_at = u.claimed_at + $4::interval",
            [h.sms.id for h in held],
            [h.sms.attempts for h in held],
            [h.claimed_at for h in held],
            self.lease,
        )

    # -- per-SMS outcomes ----------------------------------------------------------------------

    async def mark_submitted(
        self, sms_id: int, smsc_message_id: str, at: datetime | None = None
    ) -> None:
        """The SMSC accepted it (submit_sm_resp) at ``at``; apply a receipt that arrived first.
        Returns once committed (with the group it joined)."""
        await self.mark_submitted_nowait(sms_id, smsc_message_id, at)

    def mark_submitted_nowait(
        self, sms_id: int, smsc_message_id: str, at: datetime | None = None
    ) -> asyncio.Future[None]:
        """:meth:`mark_submitted` queued now; the future resolves when it is committed (the
        sender uses it to free the SMS's task at once: one task switch less per SMS)."""
        done = asyncio.get_running_loop().create_future()
        self._submits.append(_Submit(sms_id, smsc_message_id, done, at))
        self._kick()
        return done

    async def mark_retry(self, sms_id: int, error: str, next_attempt_at: datetime) -> None:
        """Temporary failure: due again at ``next_attempt_at``."""
        await self.pool.execute(
            "UPDATE sms_outbox SET status = 'queued', last_error = $2, next_attempt_at = $3,"
            " updated_at = now() WHERE id = $1 AND status = 'sending'",
            sms_id,
            error,
            next_attempt_at,
        )

    async def mark_failed(self, sms_id: int, error: str) -> None:
        """Gave up (permanent refusal, or the attempt limit)."""
        await self.pool.execute(
            "UPDATE sms_outbox SET status = 'failed', last_error = $2, updated_at = now()"
            " WHERE id = $1 AND status IN ('queued', 'sending')",
            sms_id,
            error,
        )

    def record_receipt(self, smsc_message_id: str, status: str, at: datetime) -> Awaitable[None]:
        """An SMPP delivery receipt (deliver_sm with esm_class receipt). Queued now; the
        returned awaitable resolves when it is committed."""
        done = asyncio.get_running_loop().create_future()
        self._receipts.append(_Receipt(smsc_message_id, status, at, done))
        self._kick()
        return done

    async def record_mo(self, source: str, destination: str, text: str, at: datetime) -> None:
        """A mobile-originated SMS to our number (SMS self-care channel)."""
        await self.pool.execute(
            "INSERT INTO sms_mo (source, destination, text, received_at,"
            " next_attempt_at) VALUES ($1, $2, $3, $4, $4)",
            source,
            destination,
            text,
            at,
        )

    # -- group commit --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Commit every queued mark and receipt now and give back rows claimed ahead but not
        handed out. The sender calls it when it stops; safe to call any time."""
        async with self._claim_lock:
            if self._refill is not None:
                await asyncio.shield(self._refill)
            held, self._held = list(self._held), collections.deque()
            try:
                await self._give_back(held)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as e:
                # they come back by themselves when the lease ends
                log.warning("sms.give_back_failed", rows=len(held), error=str(e))
        await self._drain()

    async def _drain(self) -> None:
        """Wait until every queued mark and receipt is committed (or has failed)."""
        while self._flusher is not None or self._submits or self._receipts:
            if self._flusher is None:
                self._kick()
            assert self._flusher is not None
            await asyncio.shield(self._flusher)

    @property
    def pending(self) -> int:
        """Marks and receipts queued and not committed yet."""
        return len(self._submits) + len(self._receipts)

    def _kick(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        try:
            while self._submits or self._receipts:
                if self.flush_delay > 0 and self.pending < self.max_batch:
                    await asyncio.sleep(self.flush_delay)  # let the group grow
                submits, self._submits = (
                    self._submits[: self.max_batch],
                    self._submits[self.max_batch :],
                )
                room = self.max_batch - len(submits)
                receipts, self._receipts = self._receipts[:room], self._receipts[room:]
                await self._commit_group(submits, receipts)
        finally:
            self._flusher = None

    async def _commit_group(self, submits: list[_Submit], receipts: list[_Receipt]) -> None:
        """One transaction for the group; if it fails, each item alone (never raises)."""
        try:
            await self._commit(submits, receipts)
        except asyncio.CancelledError:
            items: list[_Submit | _Receipt] = [*submits, *receipts]
            for item in items:
                if not item.done.done():
                    item.done.cancel()
            raise
        except Exception as group_error:
            if len(submits) + len(receipts) == 1:
                self._settle((*submits, *receipts), group_error)
                return
            log.warning(
                "sms.group_commit_failed",
                submits=len(submits),
                receipts=len(receipts),
                error=repr(group_error),
            )
            for s in submits:
                await self._commit_group([s], [])
            for r in receipts:
                await self._commit_group([], [r])
            return
        self._settle((*submits, *receipts), None)

    @staticmethod
    def _settle(items: Sequence[_Submit | _Receipt], error: BaseException | None) -> None:
        for item in items:
            if item.done.done():
                continue
            if error is None:
                item.done.set_result(None)
            else:
                item.done.set_exception(error)
                # nobody may await it (the caller was cancelled): do not warn about that
                item.done.add_done_callback(_retrieve)

    async def _commit(self, submits: Sequence[_Submit], receipts: Sequence[_Receipt]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            self.transactions += 1
            if len({r.smsc_message_id for r in receipts}) == len(receipts):
                if self._group_sql is None:
                    self._group_sql = _GROUP.format(
                        presence=self.settled_filter, charge=self.charge_filter
                    )
                settled = await conn.fetch(
                    self._group_sql,
                    [s.sms_id for s in submits],
                    [s.smsc_message_id for s in submits],
                    [r.smsc_message_id for r in receipts],
                    [r.status for r in receipts],
                    [r.at for r in receipts],
                    [s.at for s in submits],
                )
                await self._settled_by_receipt(conn, [r for r in settled if r["presence"]])
                charged = [r for r in settled if r["charge"]]
                if charged:
                    await self._charged(conn, charged)
                return
            # a message id with two receipts in the group: statement by statement, in order
            if submits:
                await self._apply_submits(conn, submits)
            if receipts:
                await self._apply_receipts(conn, receipts)

    async def _apply_submits(self, conn: asyncpg.Connection, submits: Sequence[_Submit]) -> None:
        ids = [s.sms_id for s in submits]
        mids = [s.smsc_message_id for s in submits]
        marked = await conn.fetch(_SUBMIT, ids, mids, [s.at for s in submits])
        early = await conn.fetch(_EARLY, ids, mids)
        await self._settled_by_receipt(conn, early)
        await self._charge_rows(conn, [*marked, *early])

    async def _apply_receipts(self, conn: asyncpg.Connection, receipts: Sequence[_Receipt]) -> None:
        await conn.execute(
            _INSERT_RECEIPTS,
            [r.smsc_message_id for r in receipts],
            [r.status for r in receipts],
            [r.at for r in receipts],
        )
        for rnd in _rounds(receipts):
            settled = await conn.fetch(
                _APPLY_RECEIPTS,
                [r.smsc_message_id for r in rnd],
                [r.status for r in rnd],
                [r.at for r in rnd],
            )
            await self._settled_by_receipt(conn, settled)
            await self._charge_rows(conn, settled)

    async def _settled_by_receipt(
        self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
    ) -> None:
        """Hook for subclasses: ``rows`` (id, destination, stat, at) were just settled by a
        receipt in this transaction (from the group statement: only DELIVRD rows passing
        :attr:`settled_filter`)."""

    def _wants_charge(self, row: asyncpg.Record) -> bool:
        """:attr:`charge_filter` in Python, for the rows of the statement-by-statement path."""
        return False

    async def _charge_rows(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> None:
        charged = [r for r in rows if self._wants_charge(r)]
        if charged:
            await self._charged(conn, charged)

    async def _charged(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> None:
        """Hook for subclasses: ``rows`` (id, destination, stat, at, key, sat) just reached the
        state :attr:`charge_filter` names, in this transaction."""

    @staticmethod
    async def _apply_receipt(
        conn: asyncpg.Connection, smsc_message_id: str, status: str, at: datetime
    ) -> None:
        """One receipt applied on ``conn`` (kept for callers outside the group commit)."""
        await conn.execute(
            f"UPDATE sms_outbox SET delivery_status = $2, delivered_at = $3,"
            f" status = {_RECEIPT_STATUS}, updated_at = now()"
            " WHERE smsc_message_id = $1 AND status IN ('sending', 'submitted')",
            smsc_message_id,
            status,
            at,
        )


def _retrieve(fut: asyncio.Future[None]) -> None:
    with contextlib.suppress(BaseException):
        fut.exception()


# ---------------------------------------------------------------------------------------------
# The node's outbox: hooks for receipts and mobile-originated SMS
# ---------------------------------------------------------------------------------------------

_MO_DUE = (
    "SELECT id FROM sms_mo WHERE handled_at IS NULL AND next_attempt_at <= $1"
    " ORDER BY next_attempt_at LIMIT $2"
)
_MO_LOCK = (
    "SELECT source, destination, text, received_at FROM sms_mo"
    " WHERE id = $1 AND handled_at IS NULL FOR UPDATE SKIP LOCKED"
)
_MO_FAILED = (
    "UPDATE sms_mo SET attempts = attempts + 1, last_error = $2,"
    " next_attempt_at = $5::timestamptz"
    "  + make_interval(secs => least($3 * 2 ^ attempts, $4))"
    " WHERE id = $1 AND handled_at IS NULL"
)

DeliveredHook = Callable[[asyncpg.Connection, str, dt.datetime], Awaitable[object]]
"""(conn, destination, at) in the receipt's transaction, for a DELIVRD receipt."""

MoHook = Callable[[asyncpg.Connection, int, str, str, str, dt.datetime], Awaitable[object]]
"""(conn, mo_id, source, destination, text, at) in the MO's transaction."""

SubscriberReceiptHook = Callable[
    [asyncpg.Connection, str, str, str, dt.datetime], Awaitable[object]
]
"""(conn, owner, destination, smsc_message_id, at) for the receipt of a subscriber's own SMS."""

ChargeHook = Callable[[asyncpg.Connection, list[tuple[str, dt.datetime]]], Awaitable[object]]
"""(conn, [(idempotency key, when)]) in the transaction that recorded the SMS's new state."""


class NotifyingOutbox(PgOutbox):
    """PgOutbox whose receipts mark presence and whose MO SMS run commands.

    ``subscribers_only``: call ``on_delivered`` only for destinations that are subscribers
    (filtered inside the group statement), for a hook that does nothing for anyone else.
    ``on_charge``: called with the SMS whose idempotency key starts with ``charge_prefix``
    once they are ``charge_on`` ("submitted": the SMSC accepted them, dated by the submit;
    "delivered": a DELIVRD receipt, dated by it), in the transaction recording that.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        lease: dt.timedelta = dt.timedelta(minutes=1),
        on_delivered: DeliveredHook | None = None,
        on_mo: MoHook | None = None,
        on_subscriber_receipt: SubscriberReceiptHook | None = None,
        subscribers_only: bool = False,
        claim_ahead: int = 256,
        flush_delay: float = 0.005,
        max_batch: int = 500,
        mo_retry_base: float = 5.0,
        mo_retry_cap: float = 600.0,
        mo_grace: float = 60.0,
        mo_command_timeout: float = 10.0,
        on_charge: ChargeHook | None = None,
        charge_on: str = "submitted",
        charge_prefix: str = "callback:",
    ) -> None:
        super().__init__(
            pool, lease=lease, claim_ahead=claim_ahead, flush_delay=flush_delay, max_batch=max_batch
        )
        if charge_on not in ("submitted", "delivered"):
            raise ValueError(f"charge_on {charge_on!r}")
        if not charge_prefix or not charge_prefix.replace(":", "").replace("-", "").isalnum():
            raise ValueError(f"charge_prefix {charge_prefix!r}")  # it goes into the SQL text
        self.on_charge = on_charge
        self.charge_on = charge_on
        self.charge_prefix = charge_prefix
        if on_charge is not None:
            keyed = f"left(d.key, {len(charge_prefix)}) = '{charge_prefix}'"
            when = "d.sat IS NOT NULL" if charge_on == "submitted" else "d.stat = 'DELIVRD'"
            self.charge_filter = f"{when} AND {keyed}"
        self.on_delivered = on_delivered
        self.subscribers_only = subscribers_only
        if on_delivered is None:
            self.settled_filter = "false"
        elif subscribers_only:
            self.settled_filter = (
                "EXISTS (SELECT 1 FROM subscriber s WHERE s.msisdn = d.destination)"
            )
        else:
            self.settled_filter = "true"
        self.on_mo = on_mo
        self.on_subscriber_receipt = on_subscriber_receipt
        self.mo_retry_base = mo_retry_base
        self.mo_retry_cap = mo_retry_cap
        # a fresh row is left to its first attempt for this long before a re-scan takes it
        self.mo_grace = mo_grace
        self.mo_command_timeout = mo_command_timeout

    async def record_foreign_receipt(
        self, owner: str, destination: str, smsc_message_id: str, status: str, at: dt.datetime
    ) -> None:
        """A receipt for a message we did not submit: a subscriber's own SMS (短信回执).

        Checked against the outbox inside the transaction, so a receipt of one of ours whose id
        the gateway no longer remembered (restart) is never mistaken for a subscriber's; queued
        marks are committed first, so one of ours is in the table when it is checked.
        """
        if status != "DELIVRD" or self.on_subscriber_receipt is None:
            return
        await self._drain()
        async with self.pool.acquire() as conn, conn.transaction():
            ours = await conn.fetchval(
                "SELECT 1 FROM sms_outbox WHERE smsc_message_id = $1 LIMIT 1", smsc_message_id
            )
            if ours is None:
                await self.on_subscriber_receipt(conn, owner, destination, smsc_message_id, at)

    async def _settled_by_receipt(
        self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
    ) -> None:
        # rows a receipt settled in this transaction (a receipt applied on arrival, or one that
        # overtook the submit and was applied with the mark): DELIVRD proves presence
        delivered = [(r["destination"], r["at"]) for r in rows if r["stat"] == "DELIVRD"]
        if self.on_delivered is not None:
            for destination, at in delivered:
                await self.on_delivered(conn, destination, at)

    def _wants_charge(self, row: asyncpg.Record) -> bool:
        if self.on_charge is None or not (row["key"] or "").startswith(self.charge_prefix):
            return False
        if self.charge_on == "submitted":
            return row["sat"] is not None
        return bool(row["stat"] == "DELIVRD")

    async def _charged(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> None:
        if self.on_charge is not None:
            when = "sat" if self.charge_on == "submitted" else "at"
            await self.on_charge(conn, [(r["key"], r[when]) for r in rows])

    async def record_mo(self, source: str, destination: str, text: str, at: dt.datetime) -> None:
        """Store the MO in a transaction of its own, then run its command in a second one; raises
        only if the MO row could not be committed (the SMSC then delivers it again). A failed
        command is retried by the re-scan, never lost."""
        mo_id = await self.pool.fetchval(
            "INSERT INTO sms_mo (source, destination, text, received_at, next_attempt_at)"
            " VALUES ($1, $2, $3, $4, $4::timestamptz + make_interval(secs => $5)) RETURNING id",
            source,
            destination,
            text,
            at,
            self.mo_grace,
        )
        if self.on_mo is None:
            return
        try:
            await asyncio.wait_for(self.handle_mo(mo_id, at), self.mo_command_timeout)
        except TimeoutError:
            log.error("sms.mo_command_timeout", mo_id=mo_id)
            with contextlib.suppress(Exception):
                await self.pool.execute(
                    _MO_FAILED,
                    mo_id,
                    "command timed out",
                    float(self.mo_retry_base),
                    float(self.mo_retry_cap),
                    at,
                )

    async def handle_mo(self, mo_id: int, now: dt.datetime) -> bool:
        """Run the command of one unhandled MO and mark it handled, in one transaction; False
        if it is handled already, taken by another node, or failed (then due again after a
        backoff from ``now``)."""
        if self.on_mo is None:
            return False
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_MO_LOCK, mo_id)
                if row is None:
                    return False
                await self.on_mo(
                    conn, mo_id, row["source"], row["destination"], row["text"], row["received_at"]
                )
                # an MO the hook left unhandled is not for us: never due again
                handled = await conn.fetchval(
                    "UPDATE sms_mo SET next_attempt_at = CASE WHEN handled_at IS NULL"
                    " THEN 'infinity' ELSE next_attempt_at END, last_error = NULL"
                    " WHERE id = $1 RETURNING handled_at IS NOT NULL",
                    mo_id,
                )
            return bool(handled)
        except Exception as e:
            log.error("sms.mo_command_failed", mo_id=mo_id, error=repr(e))
            with contextlib.suppress(Exception):  # the database may be away: next re-scan
                await self.pool.execute(
                    _MO_FAILED,
                    mo_id,
                    repr(e)[:500],
                    float(self.mo_retry_base),
                    float(self.mo_retry_cap),
                    now,
                )
            return False

    async def retry_mo(self, now: dt.datetime, limit: int = 100) -> int:
        """Run the commands of unhandled MO rows that are due at ``now``; how many were
        handled."""
        if self.on_mo is None:
            return 0
        ids = [r["id"] for r in await self.pool.fetch(_MO_DUE, now, limit)]
        done = 0
        for mo_id in ids:
            done += await self.handle_mo(mo_id, now)
        return done

    async def run_mo_retry(
        self, stop: asyncio.Event, clock: Callable[[], dt.datetime], interval: float = 5.0
    ) -> None:
        """Re-scan unhandled MO every ``interval`` s until ``stop`` is set (started next to the
        outbox sender, timed by the node's wall ``clock``); database errors only delay it."""
        while not stop.is_set():
            try:
                n = await self.retry_mo(clock())
                if n:
                    log.info("sms.mo_retried", handled=n)
            except Exception as e:
                log.warning("sms.mo_rescan_failed", error=repr(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
