"""``mcn-scp run``: the SCP node (:mod:`scp.app`) until SIGINT/SIGTERM; ``--demo`` shows a
missed call become an SMS on it once it is up (:mod:`scp.tools.demo`, what ``make run`` does).
``mcn-scp web``: the HTTP application alone (:mod:`scp.web`), beside the nodes.
"""

from __future__ import annotations

import click
import structlog

from scp.app import Services, main_run, main_web
from scp.cli.common import BadInputError, get_config
from scp.cli.logs import configure_logging
from scp.config import ConfigError
from scp.state.db import DatabaseError
from scp.state.migrate import SchemaVersionError
from scp.tools.demo import run_demo

__all__ = ["run", "web"]


@click.command()
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
    on_started = None
    if demo:

        def on_started(services: Services) -> object:
            return run_demo(services.node, services.pool, cfg)

    try:
        main_run(cfg, capture=capture, on_started=on_started)
    except ConfigError as e:
        raise BadInputError(f"config: {e}") from None
    except (SchemaVersionError, DatabaseError) as e:
        structlog.get_logger("scp").error("database unusable", error=str(e))
        raise click.ClickException(str(e)) from None
    except OSError as e:
        structlog.get_logger("scp").error("node failed", error=str(e))
        raise click.ClickException(str(e)) from None


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file ([web] listen says where to serve).",
)
@click.pass_context
def web(ctx: click.Context, config_path: str | None) -> None:
    """Serve the portal, console, API and health pages alone, without signalling."""
    if config_path:
        ctx.obj["config_path"] = config_path
    cfg = get_config(ctx)
    configure_logging(ctx.obj.get("log_level") or cfg.log.level, cfg.log.format)
    try:
        main_web(cfg)
    except ConfigError as e:
        raise BadInputError(f"config: {e}") from None
    except (SchemaVersionError, DatabaseError) as e:
        structlog.get_logger("scp").error("database unusable", error=str(e))
        raise click.ClickException(str(e)) from None
    except OSError as e:
        structlog.get_logger("scp").error("web failed", error=str(e))
        raise click.ClickException(str(e)) from None
