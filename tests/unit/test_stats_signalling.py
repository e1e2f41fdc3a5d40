"""The TC-boundary counters (:class:`scp.service.stats.SignallingStats`) fed primitives by hand,
and their Prometheus families (:func:`scp.web.metrics.node_families`) parsed back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from scp.codecs.appctx import CAP_V2_GSMSSF_SCF, MAP_SHORT_MSG_ALERT_V2
from scp.primitives import (
    DialogueDiagnostic,
    DialogueResult,
    GlobalTitle,
    Invoke,
    LCancel,
    PAbortCause,
    ProblemType,
    Reject,
    ReturnResult,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcUAbort,
    TcUni,
)
from scp.service.stats import LATENCY_BUCKETS, Histogram, NodeStats, SignallingStats
from scp.web.context import NodeMetrics, NodeSnapshot
from scp.web.metrics import linked_families, node_families, render

A = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))
CAP = "CAP-v2-gsmSSF-to-gsmSCF-AC"


def begin(did: int, ac: tuple[int, ...] | None, *ops: int) -> TcBegin:
    return TcBegin(did, A, A, ac, None, tuple(Invoke(i + 1, op) for i, op in enumerate(ops)))


def test_a_call_is_counted_and_timed() -> None:
    s = SignallingStats()
    s.indication(begin(1, CAP_V2_GSMSSF_SCF, 0), now=10.0)  # InitialDP
    s.request(TcContinue(1, CAP_V2_GSMSSF_SCF, None, (Invoke(1, 23), Invoke(2, 31))), now=10.2)
    s.indication(TcContinue(1, None, None, (Invoke(3, 24),)), now=15.0)  # EventReportBCSM
    s.request(TcEnd(1, None, None, (Invoke(4, 20),)), now=15.004)  # Connect
    assert s.dialogues_opened == {(CAP, "in"): 1}
    assert s.dialogues_ended == {(CAP, "end"): 1}
    assert s.operations_in == {(CAP, "initialDP"): 1, (CAP, "eventReportBCSM"): 1}
    assert s.operations_out == {
        (CAP, "requestReportBCSMEvent"): 1,
        (CAP, "continue"): 1,
        (CAP, "connect"): 1,
    }
    idp, erb = s.initial_dp_latency, s.event_report_latency
    assert (idp.count, erb.count) == (1, 1)
    idp_le, erb_le = idp.cumulative(), erb.cumulative()
    assert idp_le[idp.bounds.index(0.1)] == 0 and idp_le[idp.bounds.index(0.25)] == 1
    assert erb_le[erb.bounds.index(0.0025)] == 0 and erb_le[erb.bounds.index(0.005)] == 1
    assert idp_le[-1] == erb_le[-1] == 1  # cumulative: every bound above holds it too
    assert s.open_dialogues == 0


def test_aborts_rejects_and_strangers() -> None:
    s = SignallingStats()
    s.indication(begin(1, (1, 2, 3), 99), now=0.0)  # an unknown context and operation
    s.request(
        TcUAbort(
            1,
            (1, 2, 3),
            result=DialogueResult.REJECT_PERMANENT,
            diagnostic=DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
        ),
        now=0.1,
    )
    s.indication(begin(2, MAP_SHORT_MSG_ALERT_V2, 64), now=0.0)
    s.indication(TcPAbort(2, PAbortCause.RESOURCE_LIMITATION), now=0.5)
    s.indication(begin(3, CAP_V2_GSMSSF_SCF, 0), now=1.0)
    s.request(TcEnd(3, None, None, (Reject(1, ProblemType.INVOKE, 1),)), now=1.0)
    assert s.operations_in[("other", "other")] == 1
    assert s.aborts == {
        ("out", "application_context_name_not_supported"): 1,
        ("in", "resource_limitation"): 1,
    }
    assert s.dialogues_ended == {
        ("other", "u_abort_sent"): 1,
        ("shortMsgAlertContext-v2", "p_abort"): 1,
        (CAP, "end"): 1,
    }
    assert s.rejects == {("out", "invoke", 1): 1}
    # the aborted InitialDP-less dialogue was never timed; the rejected InitialDP was answered
    assert s.initial_dp_latency.count == 1 and s.open_dialogues == 0


def test_every_indication_kind_from_the_peer_and_from_tcap() -> None:
    s = SignallingStats()
    s.indication(begin(1, CAP_V2_GSMSSF_SCF, 0), now=0.0)
    s.indication(TcComponentEvent(1, Reject(1, ProblemType.INVOKE, 2, source="local")), now=0.1)
    s.indication(TcComponentEvent(1, LCancel(2, 23)), now=0.1)  # a timer: not counted
    reject_in = Reject(None, ProblemType.GENERAL, 0, source="remote")
    s.indication(TcContinue(1, None, None, (ReturnResult(2), reject_in)), now=0.2)
    s.indication(TcEnd(1), now=0.3)
    s.indication(begin(2, CAP_V2_GSMSSF_SCF), now=0.0)
    s.indication(TcUAbort(2, diagnostic=DialogueDiagnostic.NO_REASON_GIVEN), now=0.1)
    s.indication(begin(3, CAP_V2_GSMSSF_SCF), now=0.0)
    s.indication(TcUAbort(3), now=0.1)
    s.indication(TcUni(4, A, A, CAP_V2_GSMSSF_SCF, None, (Invoke(1, 0),)), now=0.0)
    s.indication(TcNotice(5, 1), now=0.0)
    assert s.dialogues_opened == {(CAP, "in"): 3}
    assert s.operations_in == {(CAP, "initialDP"): 1}  # the TC-UNI's invoke is not in it
    assert s.rejects == {("local", "invoke", 2): 1, ("in", "general", 0): 1}
    assert s.aborts == {("in", "no_reason_given"): 1, ("in", "user"): 1}
    assert s.dialogues_ended == {
        (CAP, "end_received"): 1,
        (CAP, "u_abort_received"): 2,
    }
    assert s.open_dialogues == 0 and s.initial_dp_latency.count == 0


def test_only_a_dialogue_request_is_counted_or_answers() -> None:
    s = SignallingStats()
    s.indication(begin(1, CAP_V2_GSMSSF_SCF, 0), now=0.0)
    for stray in (TcPAbort(1, PAbortCause.RESOURCE_LIMITATION), TcNotice(1, 1)):
        assert s.request(stray, now=0.1) is False
    assert s.request(TcBegin(7, A, A, MAP_SHORT_MSG_ALERT_V2, None, (Invoke(1, 64),)), 0.2) is False
    assert s.request(TcContinue(1, CAP_V2_GSMSSF_SCF), now=0.3) is True
    assert s.request(TcUAbort(7), now=0.4) is False
    assert s.dialogues_opened == {(CAP, "in"): 1, ("shortMsgAlertContext-v2", "out"): 1}
    assert s.operations_out == {("shortMsgAlertContext-v2", "alertServiceCentre"): 1}
    assert s.dialogues_ended == {("shortMsgAlertContext-v2", "u_abort_sent"): 1}
    assert s.aborts == {("out", "user"): 1} and s.open_dialogues == 1


def test_families_render_and_parse() -> None:
    stats = NodeStats()
    stats.signalling.indication(begin(1, CAP_V2_GSMSSF_SCF, 0), now=0.0)
    stats.signalling.request(TcEnd(1, None, None, (Invoke(1, 31),)), now=0.003)
    stats.calls.records_lost["missed_call"] += 2
    stats.calls.db_latency["read"].observe(0.004)
    stats.calls.db_latency["write"].observe(0.02)
    snap = NodeSnapshot(
        stats=stats,
        asp_states={1: "active", 2: "inactive"},
        as_state="active",
        sccp_returns={"subsystem_failure": 3},
        smpp={"throttled": 4},
        smpp_window_in_use=5,
        smpp_window=10,
        sms_submitted=6,
        sms_failed=1,
        sms_retried=2,
        outbox_depth=7,
        outbox_oldest_age=1.5,
    )

    class Fixed(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return node_families(snap)

    reg = CollectorRegistry(auto_describe=False)
    reg.register(Fixed())
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(generate_latest(reg).decode())
        for s in fam.samples
    }
    assert (
        got[
            "mcn_scp_operations_sent_total",
            (("application_context", CAP), ("operation", "continue")),
        ]
        == 1
    )
    assert got["mcn_scp_initial_dp_answer_seconds_bucket", (("le", "0.0025"),)] == 0
    assert got["mcn_scp_initial_dp_answer_seconds_bucket", (("le", "0.005"),)] == 1
    assert got["mcn_scp_call_records_lost_total", (("kind", "missed_call"),)] == 2
    # the call path's database round trips, one labelled histogram by work
    assert got["mcn_scp_db_query_seconds_bucket", (("le", "0.0025"), ("work", "read"))] == 0
    assert got["mcn_scp_db_query_seconds_bucket", (("le", "0.005"), ("work", "read"))] == 1
    assert got["mcn_scp_db_query_seconds_bucket", (("le", "0.01"), ("work", "write"))] == 0
    assert got["mcn_scp_db_query_seconds_bucket", (("le", "0.025"), ("work", "write"))] == 1
    assert got["mcn_scp_db_query_seconds_count", (("work", "write"),)] == 1
    assert got["mcn_scp_db_query_seconds_sum", (("work", "read"),)] == 0.004
    assert got["mcn_scp_sccp_returns_total", (("cause", "subsystem_failure"),)] == 3
    assert got["mcn_scp_sms_throttled_total", ()] == 4
    assert got["mcn_scp_smpp_window_in_use", ()] == 5
    assert got["mcn_scp_outbox_oldest_age_seconds", ()] == 1.5
    assert got["mcn_scp_m3ua_asp_state", (("association", "2"), ("state", "inactive"))] == 1
    assert got["mcn_scp_m3ua_asp_state", (("association", "2"), ("state", "active"))] == 0
    assert got["mcn_scp_m3ua_as_state", (("state", "active"),)] == 1


@given(st.lists(st.one_of(st.sampled_from(LATENCY_BUCKETS), st.floats(0, 10)), max_size=50))
def test_histogram_buckets_count_each_observation_at_most_each_bound(values: list[float]) -> None:
    h = Histogram()
    for v in values:
        h.observe(v)
    # the Prometheus "le" rule, counted the slow way: a value on a bound is in that bucket
    assert h.cumulative() == [sum(1 for v in values if v <= b) for b in h.bounds]
    assert (h.count, h.total) == (len(values), sum(values))


def _snapshot(idps: int) -> NodeSnapshot:
    stats = NodeStats()
    for did in range(idps):
        stats.signalling.indication(begin(did, CAP_V2_GSMSSF_SCF, 0), now=0.0)
        stats.signalling.request(TcEnd(did, None, None, (Invoke(1, 31),)), now=0.002)
    return NodeSnapshot(
        stats=stats,
        asp_states={1: "active"},
        as_state="active",
        sccp_returns={},
        smpp={},
        smpp_window_in_use=0,
        smpp_window=10,
        sms_submitted=0,
        sms_failed=0,
        sms_retried=0,
        outbox_depth=0,
        outbox_oldest_age=0.0,
    )


def _scraped(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = render(families).decode()
    assert text.count("# TYPE mcn_scp_operations_received_total counter") <= 1
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_linked_families_label_each_workers_samples() -> None:
    """The web child of a ``--workers`` node: every worker's families (their text, as they hand
    it over) under one family each, every sample labelled with its worker; a worker that did
    not answer or handed over no exposition text is not alive; the web's own pool beside them,
    labelled ``process="web"``."""
    node = NodeMetrics(
        {
            10: render(node_families(_snapshot(1))),
            11: render(node_families(_snapshot(2))),
            12: None,
            13: b"\xff not metrics",
        },
        per_worker=True,
    )
    web = [GaugeMetricFamily("mcn_scp_db_pool_size", "Connections open in the pool", 3)]
    got = _scraped(linked_families(node, web))
    for worker, idps in (("10", 1), ("11", 2)):
        labels = (("application_context", CAP), ("operation", "initialDP"), ("worker", worker))
        assert got["mcn_scp_operations_received_total", labels] == idps
        assert got["mcn_scp_initial_dp_answer_seconds_count", (("worker", worker),)] == idps
        bucket = (("le", "0.0025"), ("worker", worker))
        assert got["mcn_scp_initial_dp_answer_seconds_bucket", bucket] == idps
    assert not [k for k in got if ("worker", "12") in k[1] or ("worker", "13") in k[1]]
    assert got["mcn_scp_db_pool_size", (("process", "web"),)] == 3
    assert got["mcn_scp_workers", ()] == 4
    assert got["mcn_scp_workers_alive", ()] == 2


def test_linked_families_of_one_process_and_of_a_silent_node() -> None:
    """A node of one process: its samples as it renders them, unlabelled. A node that does not
    answer: the web's own families all the same, and no node process alive."""
    web = [GaugeMetricFamily("mcn_scp_db_pool_size", "Connections open in the pool", 2)]
    got = _scraped(linked_families(NodeMetrics({5: render(node_families(_snapshot(3)))}), web))
    labels = (("application_context", CAP), ("operation", "initialDP"))
    assert got["mcn_scp_operations_received_total", labels] == 3
    assert got["mcn_scp_db_pool_size", (("process", "web"),)] == 2
    assert got["mcn_scp_workers", ()] == got["mcn_scp_workers_alive", ()] == 1
    web = [GaugeMetricFamily("mcn_scp_db_pool_size", "Connections open in the pool", 2)]
    got = _scraped(linked_families(NodeMetrics({5: None}), web))
    assert got == {
        ("mcn_scp_db_pool_size", (("process", "web"),)): 2,
        ("mcn_scp_workers", ()): 1,
        ("mcn_scp_workers_alive", ()): 0,
    }
