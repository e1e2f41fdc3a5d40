"""``/metrics``: the node's counters and state in the Prometheus text exposition format
(version 0.0.4, rendered by the PyPI ``prometheus-client``), for the carrier's monitoring.

Nothing is counted twice: at scrape time a custom collector reads what the node already keeps
(:class:`~scp.service.stats.NodeStats`, the M3UA and SCCP cores, the SMPP session, the
outbox sender, the pool) from a :class:`~scp.web.context.NodeSnapshot` that the node builds on demand; the one
query is the outbox backlog (on the claim index). A web-only process (``mcn-scp web``) exports
its database pool alone. Metric names are the contract the Grafana dashboard in
``docs/grafana-dashboard.json`` queries (a test checks each one is exported).

``mcn-scp run`` serves its web application from a child process: at each scrape the child reads
each node process's families, rendered by that process (:func:`process_families`, :func:`render`),
over the node-local link (:mod:`scp.adapters.worker_metrics`) and exports them beside its own
pool's, which carry ``process="web"`` (:func:`linked_families`). Under ``--workers N`` each
worker counts its own traffic, and each sample is labelled with its ``worker`` ID; how many
processes the node has and how many answered are exported too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from scp.service.stats import Histogram
from scp.web.context import NodeMetrics, NodeSnapshot, WebContext

__all__ = [
    "NodeSnapshot",
    "install",
    "linked_families",
    "node_families",
    "pool_families",
    "process_families",
    "render",
]

P = "mcn_scp_"
# generate_latest writes the classic text format 0.0.4, which every Prometheus reads; say so
# (newer clients announce 1.0.0, which older servers refuse)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


ASP_STATES = ("down", "inactive", "active")
AS_STATES = ("down", "inactive", "active", "pending")


def _counter(name: str, doc: str, labels: Iterable[str], values: Mapping[Any, int]) -> Metric:
    labels = list(labels)
    m = CounterMetricFamily(P + name, doc, labels=labels)
    for key, v in sorted(values.items(), key=lambda kv: str(kv[0])):
        key_t = key if isinstance(key, tuple) else (key,)
        m.add_metric([str(k) for k in key_t], v)
    return m


def _buckets(h: Histogram) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = [
        (repr(b), c) for b, c in zip(h.bounds, h.cumulative(), strict=True)
    ]
    out.append(("+Inf", h.count))
    return out


def _histogram(name: str, doc: str, h: Histogram) -> Metric:
    return HistogramMetricFamily(P + name, doc, buckets=_buckets(h), sum_value=h.total)


def _histograms(name: str, doc: str, label: str, hs: Mapping[str, Histogram]) -> Metric:
    m = HistogramMetricFamily(P + name, doc, labels=[label])
    for key, h in sorted(hs.items()):
        m.add_metric([key], _buckets(h), sum_value=h.total)
    return m


def node_families(s: NodeSnapshot) -> list[Metric]:
    """The metric families of one node (see the README, Operations, "Metrics")."""
    sig = s.stats.signalling
    calls = s.stats.calls
    out: list[Metric] = [
        _counter(
            "tcap_dialogues_opened",
            "TCAP dialogues opened, by application context and direction (in: the peer's TC-BEGIN)",
            ("application_context", "direction"),
            sig.dialogues_opened,
        ),
        _counter(
            "tcap_dialogues_ended",
            "TCAP dialogues ended, by application context and outcome",
            ("application_context", "outcome"),
            sig.dialogues_ended,
        ),
        GaugeMetricFamily(
            P + "tcap_dialogues_open", "TCAP dialogues open at the TC-user", sig.open_dialogues
        ),
        _counter(
            "operations_received",
            "Operations (invokes) received, by application context and operation",
            ("application_context", "operation"),
            sig.operations_in,
        ),
        _counter(
            "operations_sent",
            "Operations (invokes) sent, by application context and operation",
            ("application_context", "operation"),
            sig.operations_out,
        ),
        _counter(
            "tcap_aborts",
            "TC-U-ABORT and TC-P-ABORT, by direction and cause",
            ("direction", "cause"),
            sig.aborts,
        ),
        _counter(
            "tcap_rejects",
            "Reject components, by direction (local: TCAP's own) and problem",
            ("direction", "problem_type", "problem_code"),
            sig.rejects,
        ),
        _histogram(
            "initial_dp_answer_seconds",
            "Time from an InitialDP to the SCP's answer in its dialogue",
            sig.initial_dp_latency,
        ),
        _histogram(
            "event_report_answer_seconds",
            "Time from an EventReportBCSM to the SCP's next request in its dialogue",
            sig.event_report_latency,
        ),
        _counter(
            "sccp_returns",
            "Messages SCCP could not deliver, by return cause (returned or dropped)",
            ("cause",),
            s.sccp_returns,
        ),
        _counter(
            "screening_refused",
            "TC-BEGINs refused by SS7 screening, and M3UA DATA refused by [[m3ua.binding]]"
            " (m3ua, DATA, opc_binding), by protocol, operation and reason",
            ("protocol", "operation", "reason"),
            s.stats.screening.refused,
        ),
        _counter(
            "calls_continued_without_database",
            "InitialDPs answered with Continue because the database did not answer in budget",
            (),
            {(): calls.continued_without_database},
        ),
        _counter(
            "call_records_lost",
            "Call records not written, by kind",
            ("kind",),
            calls.records_lost,
        ),
        _counter(
            "call_records_in_doubt",
            "Call records whose write was cut off after it reached the server, by kind",
            ("kind",),
            calls.records_in_doubt,
        ),
        _counter(
            "db_retries",
            "Database work run again after a transient error",
            (),
            {(): calls.db_retries},
        ),
        _histograms(
            "db_query_seconds",
            "Call-path database round trips (connection taken to answer), by work: read, write",
            "work",
            calls.db_latency,
        ),
        _counter(
            "requests_failed",
            "Self-service requests answered 'not done' for want of the database",
            (),
            {(): calls.requests_failed},
        ),
        _counter("sms_submitted", "SMS accepted by the SMSC", (), {(): s.sms_submitted}),
        _counter("sms_failed", "SMS given up or refused for good", (), {(): s.sms_failed}),
        _counter("sms_retried", "SMS submits to be tried again", (), {(): s.sms_retried}),
        _counter(
            "sms_throttled",
            "submit_sm answered ESME_RTHROTTLED by the SMSC",
            (),
            {(): s.smpp.get("throttled", 0)},
        ),
        GaugeMetricFamily(
            P + "smpp_window_in_use", "submit_sm outstanding at the SMSC", s.smpp_window_in_use
        ),
        GaugeMetricFamily(P + "smpp_window", "The configured SMPP window", s.smpp_window),
        GaugeMetricFamily(
            P + "outbox_depth", "SMS queued or being sent in the outbox", s.outbox_depth
        ),
        GaugeMetricFamily(
            P + "outbox_oldest_age_seconds",
            "How long the longest-waiting due SMS has been due",
            s.outbox_oldest_age,
        ),
    ]
    asp = GaugeMetricFamily(
        P + "m3ua_asp_state",
        "ASP state per association (1 for the state it is in)",
        labels=["association", "state"],
    )
    for assoc, state in sorted(s.asp_states.items()):
        for name in ASP_STATES:
            asp.add_metric([str(assoc), name], 1.0 if state == name else 0.0)
    as_ = GaugeMetricFamily(
        P + "m3ua_as_state", "State of the application server (1 for its state)", labels=["state"]
    )
    for name in AS_STATES:
        as_.add_metric([name], 1.0 if s.as_state == name else 0.0)
    out += [
        asp,
        as_,
        GaugeMetricFamily(
            P + "overloaded", "1 while the node sends CallGap ([overload])", float(s.overloaded)
        ),
        _counter("call_gaps_sent", "CallGap sent to switches", (), {(): s.call_gaps_sent}),
    ]
    return out


def pool_families(pool: asyncpg.Pool) -> list[Metric]:
    """The database pool: connections open, idle and the most it may open."""
    size = pool.get_size()
    return [
        GaugeMetricFamily(P + "db_pool_size", "Connections open in the pool", size),
        GaugeMetricFamily(
            P + "db_pool_in_use", "Connections taken from the pool", size - pool.get_idle_size()
        ),
        GaugeMetricFamily(P + "db_pool_max", "The pool's maximum size", pool.get_max_size()),
    ]


def process_families(pool: asyncpg.Pool, snapshot: NodeSnapshot | None) -> list[Metric]:
    """What one process exports: its pool, and its node's families if it runs a node."""
    families = pool_families(pool)
    if snapshot is not None:
        families += node_families(snapshot)
    return families


def _workers(configured: int, alive: int) -> list[Metric]:
    return [
        GaugeMetricFamily(
            P + "workers", "Worker processes of the node ([node] workers)", configured
        ),
        GaugeMetricFamily(
            P + "workers_alive",
            "Worker processes whose metrics this scrape read (the serving one included)",
            alive,
        ),
    ]


def _labelled(families: list[Metric], **labels: str) -> list[Metric]:
    """``families`` with every sample labelled ``labels`` too."""
    for m in families:
        m.samples = [s._replace(labels={**s.labels, **labels}) for s in m.samples]
    return families


def linked_families(node: NodeMetrics, web: list[Metric]) -> list[Metric]:
    """What the node's web child exports: every node process's families (their text, as each
    hands it over; labelled with its ``worker`` ID under ``--workers``), the web process's own
    ``web`` labelled ``process="web"``, one family per name (Prometheus refuses a name twice),
    and how many node processes there are and answered. A text that does not parse counts as
    a process not answering."""
    merged: dict[str, Metric] = {}

    def merge(families: list[Metric]) -> None:
        for m in families:
            if (mine := merged.get(m.name)) is None:
                merged[m.name] = m
            elif mine.type == m.type:
                mine.samples += m.samples

    alive = 0
    for worker_id, text in sorted(node.texts.items()):
        if text is None:
            continue
        try:
            theirs = list(text_string_to_metric_families(text.decode()))
        except ValueError:  # UnicodeDecodeError included
            continue
        alive += 1
        merge(_labelled(theirs, worker=str(worker_id)) if node.per_worker else theirs)
    merge(_labelled(web, process="web"))
    return [*merged.values(), *_workers(len(node.texts), alive)]


def render(families: list[Metric]) -> bytes:
    """``families`` in the text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


class _Families(Collector):
    """A collector over families built for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def install(app: FastAPI, ctx: WebContext) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        families = pool_families(ctx.pool)
        if ctx.node_metrics is not None:
            families = linked_families(await ctx.node_metrics(), families)
        return Response(render(families), media_type=CONTENT_TYPE)
