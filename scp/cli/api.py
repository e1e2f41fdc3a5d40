"""``mcn-scp api token create|list|revoke``: the carrier API's clients and their bearer tokens.

``create NAME --scope SCOPE[,SCOPE]`` prints the token once (only its SHA-256 is stored:
:mod:`scp.service.apitoken`); ``list`` shows each client's name, scopes and the token's first
characters; ``revoke NAME`` stops the token at once. Every change is in the audit log.
"""

from __future__ import annotations

from typing import Any

import click

from scp.adapters.clock import utcnow
from scp.cli.common import actor, csv_list, emit, json_option, run_db, table
from scp.flows import api as api_flow
from scp.flows.api import ApiClient
from scp.service.apitoken import SCOPES


def _row(c: ApiClient) -> dict[str, Any]:
    return {
        "name": c.name,
        "scopes": ",".join(c.scopes),
        "token": c.token_hint + "…",
        "created_at": c.created_at.isoformat(timespec="seconds"),
        "last_used_at": c.last_used_at.isoformat(timespec="seconds") if c.last_used_at else "",
        "revoked_at": c.revoked_at.isoformat(timespec="seconds") if c.revoked_at else "",
    }


@click.group("api")
def api_group() -> None:
    """The carrier API (/api/v1): its clients' tokens."""


@api_group.group("token")
def token_group() -> None:
    """Bearer tokens of API clients: create, list, revoke."""


@token_group.command("create")
@click.argument("name")
@click.option("--scope", "scope", required=True, help=f"Comma-separated: {','.join(SCOPES)}.")
@json_option
def token_create(name: str, scope: str, as_json: bool) -> None:
    """Make a client NAME and print its token (shown this once only)."""
    client, token = run_db(
        lambda c: api_flow.create_client(c, actor(), name, csv_list(scope), now=utcnow())
    )
    emit(
        {**_row(client), "token": token},
        as_json,
        lambda r: (
            f"{token}\n(client {r['name']}, scopes {r['scopes']}: the token is not shown"
            " again; only its digest is stored)"
        ),
    )


@token_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked clients.")
@json_option
def token_list(show_all: bool, as_json: bool) -> None:
    """The API clients (names, scopes, the token's first characters)."""
    clients = run_db(lambda c: api_flow.list_clients(c, revoked=show_all))
    rows = [_row(c) for c in clients]
    cols = ["name", "scopes", "token", "created_at", "last_used_at"]
    emit(rows, as_json, lambda r: table(r, cols + (["revoked_at"] if show_all else [])))


@token_group.command("revoke")
@click.argument("name")
@json_option
def token_revoke(name: str, as_json: bool) -> None:
    """Revoke client NAME's token: it stops working at once."""
    client = run_db(lambda c: api_flow.revoke_client(c, actor(), name, now=utcnow()))
    emit(_row(client), as_json, lambda r: f"revoked {r['name']}")
