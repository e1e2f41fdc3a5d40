"""The ``mcn-scp`` command (ARCHITECTURE §3): one click group, a module per command group.

Exit codes: 0 done; 2 bad input (the message names the field or the file's line); 1 failure.
Logging is configured here and only here (:mod:`scp.cli.logs`); ``replay`` and ``simulate``
keep the in-process node to errors unless ``-v`` or ``--log-level`` asks.

A command's module is imported when that command runs (:class:`LazyGroup`), so
``mcn-scp subscriber list`` does not load the node and its CAP / MAP codecs (pycrate's ASN.1
takes most of a second) that ``run``, ``replay`` and ``simulate`` need.
"""

from __future__ import annotations

import importlib

import click

from scp.cli.logs import configure_logging

__all__ = ["OFFERS", "main"]

# command name -> "module:attribute" of its click command or group
COMMANDS = {
    "ads": "scp.cli.ads:ads_group",
    "api": "scp.cli.api:api_group",
    "billing": "scp.cli.billing:billing_group",
    "blacklist": "scp.cli.subscribers:blacklist_group",
    "callbacks": "scp.cli.records:callbacks_group",
    "cdr": "scp.cli.charging:cdr_group",
    "db": "scp.cli.db:db_group",
    "missed-calls": "scp.cli.records:missed_calls_group",
    "operator": "scp.cli.operators:operator_group",
    "pin": "scp.cli.subscribers:pin_group",
    "products": "scp.cli.billing:products_group",
    "rates": "scp.cli.charging:rates_group",
    "replay": "scp.cli.replay:replay",
    "report": "scp.cli.reports:report_group",
    "run": "scp.cli.node:run",
    "service": "scp.cli.subscribers:service_group",
    "simulate": "scp.cli.simulate:simulate",
    "sms": "scp.cli.records:sms_group",
    "subscriber": "scp.cli.subscribers:subscriber_group",
    "web": "scp.cli.node:web",
}

# What the CLI offers, against the self-service table (scp.service.parity.FUNCTIONS): each
# function's command ("a|b": both subcommands; "--x": an option the command must have).
OFFERS = {
    "missed-calls": "missed-calls list --callee",
    "callbacks": "callbacks list --callee",
    "service-on-off": "service enable|disable",
    "blacklist": "blacklist add|del|list",
    "forward-to": "subscriber set --forward-to",
    "notify-mode": "subscriber set --notify-mode",
    "language": "subscriber set --language",
    "change-pin": "pin set",
    "charges": "cdr export",
    "enrol": "subscriber add",
    "pin-reset-unlock": "pin reset|unlock",
    "sms-outbox": "sms list|retry",
    "call-inquiry": "missed-calls list --callee",
}

# Tools whose output is their stdout (a ladder, a verdict): the node they run in-process logs
# only errors unless -v or --log-level asks for more.
QUIET_COMMANDS = frozenset({"replay", "simulate"})
QUIET_LEVEL = "error"


class LazyGroup(click.Group):
    """A group whose commands live in :data:`COMMANDS` and are imported when first asked for
    (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="MCN_CONFIG",
    help="TOML config (default: $MCN_CONFIG or conf/example.toml).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Override [log].level.",
)
@click.version_option(package_name="mcn-scp", prog_name="mcn-scp")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str | None) -> None:
    """mcn-scp: IN Service Control Point for missed-call notification (来电提醒)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["log_level"] = log_level
    quiet = ctx.invoked_subcommand in QUIET_COMMANDS
    configure_logging(log_level or (QUIET_LEVEL if quiet else "info"), "auto")
