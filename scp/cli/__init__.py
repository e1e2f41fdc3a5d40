"""The ``mcn-scp`` command (ARCHITECTURE §3), and the only place logging is configured.

Exit codes: 0 done; 2 bad input (the message names the field or the file's line); 1 failure.
Logs are structured (structlog): human-readable on a terminal, one JSON object per line
otherwise, so a log shipper can index them. Values are readable (enums by value); ``replay``
and ``simulate`` keep the in-process node to errors unless ``-v`` or ``--log-level`` asks.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import click
import structlog

from scp.cli_provision import BadInputError, get_config, register
from scp.cli_tools import register as register_tools
from scp.config import ConfigError

# Tools whose output is their stdout (a ladder, a verdict): the node they run in-process logs
# only errors unless -v or --log-level asks for more.
QUIET_COMMANDS = frozenset({"replay", "simulate"})
QUIET_LEVEL = "error"


def readable_values(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Enums by their value (``AS-ACTIVE``, not ``<AsState.ACTIVE: 'AS-ACTIVE'>``)."""
    for key, value in event_dict.items():
        if isinstance(value, enum.Enum):
            event_dict[key] = value.value
        elif isinstance(value, (list, tuple)) and any(isinstance(v, enum.Enum) for v in value):
            event_dict[key] = [v.value if isinstance(v, enum.Enum) else v for v in value]
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog (and stdlib logging) to stderr as JSON, or as console lines on a TTY."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            readable_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    handler.setStream(sys.stderr)
    handler.filters = [_LibraryDetail(debug=lvl <= logging.DEBUG)]
    root.setLevel(max(lvl, logging.WARNING))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one stdlib handler this command installs (libraries' log records go there)."""


class _LibraryDetail(logging.Filter):
    """pycrate logs at INFO what it forgives while decoding (an unknown extension, an open
    type it cannot look up), and sets its own logger to INFO when imported: decoding detail,
    not events of ours, so it reaches stderr only when debugging."""

    def __init__(self, *, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        return (
            self.debug or record.levelno >= logging.WARNING or not record.name.startswith("pycrate")
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    # A tool's -v asks for the node's log lines after this ran: the tool calls this back.
    ctx.obj["configure_logging"] = configure_logging
    quiet = ctx.invoked_subcommand in QUIET_COMMANDS
    configure_logging(log_level or (QUIET_LEVEL if quiet else "info"), "auto")


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (ARCHITECTURE §3 contract).",
)
@click.option(
    "--capture",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write all M3UA traffic both ways to this pcap (SCTP-framed, flushed per packet).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Once up: seed two demo subscribers and replay pcaps/demo-missed-call.pcap "
    "against this node, showing a missed call become an SMS (what `make run` does).",
)
@click.pass_context
def run(ctx: click.Context, config_path: str | None, capture: str | None, demo: bool) -> None:
    """Run the SCP node until SIGINT/SIGTERM."""
    if config_path:
        ctx.obj["config_path"] = config_path
    cfg = get_config(ctx)
    configure_logging(ctx.obj.get("log_level") or cfg.log.level, cfg.log.format)
    from scp.app import main_run
    from scp.state.db import DatabaseError
    from scp.state.migrate import SchemaVersionError

    try:
        main_run(cfg, capture=capture, demo=demo)
    except ConfigError as e:
        raise BadInputError(f"config: {e}") from None
    except (SchemaVersionError, DatabaseError) as e:
        structlog.get_logger("scp").error("database unusable", error=str(e))
        raise click.ClickException(str(e)) from None
    except OSError as e:
        structlog.get_logger("scp").error("node failed", error=str(e))
        raise click.ClickException(str(e)) from None


register(main)
register_tools(main)
