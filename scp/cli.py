"""The ``mcn-scp`` command (ARCHITECTURE §3), and the only place logging is configured.

Exit codes: 0 done; 2 bad input (the message names the field or the file's line); 1 failure.
Logs are structured (structlog): human-readable on a terminal, one JSON object per line
otherwise, so a log shipper can index them.
"""

from __future__ import annotations

import logging
import sys

import click
import structlog

from scp.cli_provision import BadInputError, get_config, register
from scp.cli_tools import register as register_tools
from scp.config import ConfigError


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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              envvar="MCN_CONFIG", help="TOML config (default: $MCN_CONFIG or conf/example.toml).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None,
              help="Override [log].level.")
@click.version_option(package_name="mcn-scp", prog_name="mcn-scp")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str | None) -> None:
    """mcn-scp: IN Service Control Point for missed-call notification (来电提醒)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["log_level"] = log_level
    configure_logging(log_level or "info", "auto")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config file (ARCHITECTURE §3 contract).")
@click.option("--capture", type=click.Path(dir_okay=False), default=None,
              help="Write all M3UA traffic both ways to this pcap (SCTP-framed, flushed per packet).")
@click.option("--demo", is_flag=True,
              help="Once up: seed two demo subscribers and replay pcaps/demo-missed-call.pcap "
                   "against this node, showing a missed call become an SMS (what `make run` does).")
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
