"""Logging of every ``mcn-scp`` command: the only place it is configured.

Logs are structured (structlog): human-readable on a terminal, one JSON object per line
otherwise, so a log shipper can index them. The libraries' own records (stdlib ``logging``:
asyncio, asyncpg, uvicorn, pycrate) go the same way: in JSON they are JSON lines too, with
their ``logger`` name and any traceback under ``exception``. Values are readable (enums by
value), and pycrate's decoding detail shows only when debugging.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "readable_values"]


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
    # what every line gets, ours and the libraries' alike
    common: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *common, readable_values, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s")
        if use_console
        else structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *common],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.setStream(sys.stderr)
    handler.filters = [_LibraryDetail(debug=lvl <= logging.DEBUG)]
    root.setLevel(max(lvl, logging.WARNING))


class _StderrHandler(logging.StreamHandler[TextIO]):
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
