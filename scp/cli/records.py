"""``mcn-scp missed-calls | callbacks | sms``: what the node recorded and queued."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import click

from scp.adapters.clock import utcnow
from scp.cli.common import (
    actor,
    emit,
    json_option,
    run_db,
    table,
)
from scp.flows import provisioning as prov
from scp.service.provisioning import (
    SMS_STATUSES,
)


def _records_text(cols: list[str]) -> Callable[[list[asyncpg.Record]], str]:
    return lambda rows: table([dict(r) for r in rows], cols)


@click.group("missed-calls")
def missed_calls_group() -> None:
    """Missed calls recorded by the call flow."""


@missed_calls_group.command("list")
@click.option("--callee", default=None)
@click.option("--pending", is_flag=True, help="Only not yet notified.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
def missed_calls_list(callee: str | None, pending: bool, limit: int, as_json: bool) -> None:
    """Newest first."""
    emit(
        run_db(lambda c: prov.list_missed_calls(c, callee=callee, pending=pending, limit=limit)),
        as_json,
        _records_text(["id", "occurred_at", "caller", "callee", "reason", "notified_at"]),
    )


@click.group("callbacks")
def callbacks_group() -> None:
    """Callback requests (notify the caller when the callee is reachable)."""


@callbacks_group.command("list")
@click.option("--callee", default=None)
@click.option("--pending", is_flag=True, help="Only not yet notified.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
def callbacks_list(callee: str | None, pending: bool, limit: int, as_json: bool) -> None:
    """Newest first."""
    emit(
        run_db(lambda c: prov.list_callbacks(c, callee=callee, pending=pending, limit=limit)),
        as_json,
        _records_text(["id", "requested_at", "caller", "callee", "notified_at"]),
    )


@click.group("sms")
def sms_group() -> None:
    """The notification SMS outbox."""


@sms_group.command("list")
@click.option("--status", default=None, help="|".join(SMS_STATUSES))
@click.option("--destination", default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
def sms_list(status: str | None, destination: str | None, limit: int, as_json: bool) -> None:
    """Newest first."""
    emit(
        run_db(lambda c: prov.list_sms(c, status=status, destination=destination, limit=limit)),
        as_json,
        _records_text(
            [
                "id",
                "created_at",
                "destination",
                "status",
                "attempts",
                "next_attempt_at",
                "last_error",
            ]
        ),
    )


@sms_group.command("retry")
@click.argument("sms_id", type=int)
def sms_retry(sms_id: int) -> None:
    """Requeue a failed or expired SMS (due now)."""
    now = utcnow()
    run_db(lambda c: prov.retry_sms(c, actor(), sms_id, now=now))
    click.echo("requeued")
