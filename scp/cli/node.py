"""``mcn-scp run``: the SCP node (:mod:`scp.app`) until SIGINT/SIGTERM; ``--demo`` shows a
missed call become an SMS on it once it is up (:mod:`scp.tools.demo`, what ``make run`` does).
``mcn-scp web``: the HTTP application alone (:mod:`scp.web`), beside the nodes, or (hidden
``--node-link``) as the web child of ``mcn-scp run`` (:mod:`scp.adapters.web_child`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import click
import structlog

from scp.adapters.supervisor import START_ENV, Supervisor
from scp.adapters.web_child import ChildLink
from scp.adapters.worker_metrics import private_directory
from scp.app import Services, WorkerSeat, main_run, main_web, worker_config, worker_seat
from scp.cli.common import BadInputError, get_config
from scp.cli.logs import configure_logging
from scp.config import Config, ConfigError
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
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes, each an ASP with its own worker ID (default: [node] workers).",
)
@click.option("--worker-index", type=int, default=None, hidden=True)
@click.option("--worker-dir", type=click.Path(file_okay=False), default=None, hidden=True)
@click.pass_context
def run(
    ctx: click.Context,
    config_path: str | None,
    capture: str | None,
    demo: bool,
    workers: int | None,
    worker_index: int | None,
    worker_dir: str | None,
) -> None:
    """Run the SCP node until SIGINT/SIGTERM."""
    if config_path:
        ctx.obj["config_path"] = config_path
    cfg = get_config(ctx)
    configure_logging(ctx.obj.get("log_level") or cfg.log.level, cfg.log.format)
    if ctx.obj.get("log_level"):  # so that the web child logs as its node does
        cfg = dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, level=ctx.obj["log_level"]))
    if workers is not None:
        cfg = _with_workers(cfg, workers)
    seat: WorkerSeat | None = None
    if worker_index is not None:  # one of the parent's workers
        if worker_dir is None:
            raise BadInputError("--worker-index needs --worker-dir")
        if not 0 <= worker_index < cfg.node.workers:
            raise BadInputError(f"--worker-index {worker_index}: not one of {cfg.node.workers}")
        seat = worker_seat(cfg, worker_dir, worker_index)
        cfg = worker_config(cfg, worker_index)
        if capture:  # one file per worker, and per life: a restart keeps what came before
            start = os.environ.get(START_ENV, "1")
            capture = f"{capture}.w{worker_index}" + (f".{start}" if start != "1" else "")
    elif cfg.node.workers > 1:
        ctx.exit(_supervise(ctx, cfg, capture, demo))
    on_started = None
    if demo:

        def on_started(services: Services) -> object:
            return run_demo(services.node, services.pool, cfg)

    try:
        main_run(cfg, capture=capture, on_started=on_started, workers=seat)
    except ConfigError as e:
        raise BadInputError(f"config: {e}") from None
    except (SchemaVersionError, DatabaseError) as e:
        structlog.get_logger("scp").error("database unusable", error=str(e))
        raise click.ClickException(str(e)) from None
    except OSError as e:
        structlog.get_logger("scp").error("node failed", error=str(e))
        raise click.ClickException(str(e)) from None


def _with_workers(cfg: Config, workers: int) -> Config:
    """``cfg`` with ``--workers`` in place of ``[node] workers`` (checked like the key)."""
    cfg = dataclasses.replace(cfg, node=dataclasses.replace(cfg.node, workers=workers))
    try:
        cfg.validate()
    except ConfigError as e:
        raise BadInputError(f"--workers: {e}") from None
    return cfg


def _supervise(ctx: click.Context, cfg: Config, capture: str | None, demo: bool) -> int:
    """The parent of the workers (:class:`~scp.adapters.supervisor.Supervisor`): one
    ``mcn-scp run`` per worker with its index and the directory of the worker sockets."""
    if cfg.m3ua.role == "server" and cfg.m3ua.listen.rsplit(":", 1)[-1] == "0":
        raise BadInputError("m3ua.listen: port 0 cannot be shared by several workers")
    head = [sys.executable, "-m", "scp"]
    if ctx.obj.get("log_level"):
        head += ["--log-level", ctx.obj["log_level"]]
    if ctx.obj.get("config_path"):
        head += ["--config", ctx.obj["config_path"]]
    directory = private_directory("workers")
    try:
        commands = []
        for i in range(cfg.node.workers):
            cmd = [*head, "run", "--workers", str(cfg.node.workers)]
            cmd += ["--worker-index", str(i), "--worker-dir", directory]
            if capture:
                cmd += ["--capture", capture]
            if demo and i == 0:
                cmd.append("--demo")
            commands.append(cmd)
        structlog.get_logger("scp").info(
            "starting workers", workers=cfg.node.workers, first_worker_id=cfg.node.worker_id
        )
        return Supervisor(commands).run()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file ([web] listen says where to serve).",
)
@click.option("--node-link", type=int, default=None, hidden=True)
@click.pass_context
def web(ctx: click.Context, config_path: str | None, node_link: int | None) -> None:
    """Serve the portal, console, API and health pages alone, without signalling."""
    link: ChildLink | None = None
    if node_link is not None:  # the web child of `mcn-scp run`: its node's config, not a file
        try:
            link = ChildLink.accept(node_link)
        except ValueError as e:
            raise BadInputError(f"--node-link: {e}") from None
        cfg = link.handover.config
    else:
        if config_path:
            ctx.obj["config_path"] = config_path
        cfg = get_config(ctx)
    configure_logging(ctx.obj.get("log_level") or cfg.log.level, cfg.log.format)
    try:
        main_web(cfg, link=link)
    except ConfigError as e:
        raise BadInputError(f"config: {e}") from None
    except (SchemaVersionError, DatabaseError) as e:
        structlog.get_logger("scp").error("database unusable", error=str(e))
        raise click.ClickException(str(e)) from None
    except OSError as e:
        structlog.get_logger("scp").error("web failed", error=str(e))
        raise click.ClickException(str(e)) from None
