"""``mcn-scp operator``: the staff accounts of the operator console (人工坐席).

The password is read from standard input (one line; prompted without echo when stdin is a
terminal), never from the command line, where ``ps`` and shell history would show it. It is
stored as a slow salted hash (scrypt, :mod:`scp.service.webauth`).
"""

from __future__ import annotations

import sys

import click

from scp.cli.common import BadInputError, actor, emit, json_option, run_db, table
from scp.flows import selfservice as flows
from scp.service.webauth import ROLES


@click.group("operator")
def operator_group() -> None:
    """Operator console accounts: agents and supervisors."""


def _password() -> str:
    """The new password: one line of stdin, or a prompt without echo on a terminal."""
    if sys.stdin.isatty():
        value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        return value
    line = sys.stdin.readline()
    if not line:
        raise BadInputError("password: expected one line on standard input")
    return line.rstrip("\r\n")


@operator_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="agent or supervisor.")
def operator_add(name: str, role: str) -> None:
    """Add an account; the password comes from standard input."""
    password = _password()
    run_db(lambda c: flows.add_operator(c, actor(), name, role, password))
    click.echo(f"operator {name} added ({role})")


@operator_group.command("passwd")
@click.argument("name")
def operator_passwd(name: str) -> None:
    """Set an account's password (from standard input); its sessions end."""
    password = _password()
    run_db(lambda c: flows.set_operator_password(c, actor(), name, password))
    click.echo(f"password of {name} set")


@operator_group.command("del")
@click.argument("name")
def operator_del(name: str) -> None:
    """Delete an account; its sessions end."""
    run_db(lambda c: flows.delete_operator(c, actor(), name))
    click.echo(f"operator {name} deleted")


@operator_group.command("list")
@json_option
def operator_list(as_json: bool) -> None:
    """The accounts (names and roles; never the hashes)."""
    ops = run_db(flows.list_operators)
    emit(
        ops,
        as_json,
        lambda os: table(
            [{"name": o.name, "role": o.role, "created": o.created_at} for o in os],
            ["name", "role", "created"],
        ),
    )
