"""TCAP transaction and component sub-layers (Q.774) driven back to back, bytes only.

Two :class:`TcapLayer` objects talk through a fake SCCP: ``scp`` (worker 1, the SCP) and ``msc``
(worker 2, playing the switch). Every TCAP message either side emits is collected and checked
by Wireshark at the end of the module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from scp.codecs import tcap
from scp.codecs.tcap import Aare, Aarq, Abrt, MessageType, TcapMessage
from scp.core.tcap import ABNORMAL_DIALOGUE, DialogueState, TcapLayer, TcapLog
from scp.primitives import (
    DialogueDiagnostic,
    DialogueResult,
    Invoke,
    LCancel,
    NNotice,
    NUnitdata,
    PAbortCause,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResult,
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcUAbort,
    TcUni,
)
from tests.unit.tcap_frames import PC_PEER, PC_SCP, PEER, SCP, assert_tshark_clean

CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)
CAP_V3 = (0, 4, 0, 0, 1, 21, 3, 4)
IDP = bytes.fromhex("3003 80012a".replace(" ", ""))  # InitialDPArg {serviceKey 42}
RRBE = bytes.fromhex("300aa008300680010d810100")  # bcsmEvents {tBusy, interrupted}
# Real CAP values where a parameter reaches the wire: tshark and the strict oracle read them.
ERB = bytes.fromhex("300380010d")  # EventReportBCSMArg {eventTypeBCSM tBusy}
PACUI = bytes.fromhex("300aa008a006800101810101")  # collectedInfo {1 digit}
DIGITS = bytes.fromhex("800403102143")  # ReceivedInformationArg digitsResponse

EMITTED: list[bytes] = []  # every TCAP message sent in this module, for tshark at the end


def _record(outputs: Iterable[object]) -> None:
    EMITTED.extend(o.data for o in outputs if type(o) is NUnitdata)


def sent(outputs: Iterable[object]) -> list[NUnitdata]:
    return [o for o in outputs if type(o) is NUnitdata]


def up(outputs: Iterable[object]) -> list[object]:
    return [o for o in outputs if type(o) not in (NUnitdata, TcapLog)]


def logs(outputs: Iterable[object]) -> list[TcapLog]:
    return [o for o in outputs if type(o) is TcapLog]


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


class Link:
    """The SCP's TCAP and the switch's TCAP, wired through a fake SCCP."""

    def __init__(self, **kw: Any) -> None:
        self.scp = TcapLayer(worker_id=1, **kw)
        self.msc = TcapLayer(worker_id=2)
        self.now = 1000.0

    def to_scp(self, outputs: Sequence[object]) -> list[object]:
        """Deliver what the switch sent to the SCP; the SCP's outputs."""
        _record(outputs)
        result: list[object] = []
        for o in sent(outputs):
            result += self.scp.handle_n_unitdata(
                NUnitdata(o.called, o.calling, o.data, opc=PC_PEER, dpc=PC_SCP), self.now
            )
        _record(result)
        return result

    def to_msc(self, outputs: Sequence[object]) -> list[object]:
        _record(outputs)
        result: list[object] = []
        for o in sent(outputs):
            result += self.msc.handle_n_unitdata(
                NUnitdata(o.called, o.calling, o.data, opc=PC_SCP, dpc=PC_PEER), self.now
            )
        _record(result)
        return result

    def open(
        self,
        ac: tuple[int, ...] | None = CAP_V2,
        components: tuple[Any, ...] = (Invoke(1, 0, IDP, op_class=2),),
    ) -> tuple[int, int, TcBegin]:
        """The switch opens a dialogue with InitialDP; (msc id, scp id, TC-BEGIN indication)."""
        mid = self.msc.new_dialogue_id()
        out = self.msc.handle_tc(TcBegin(mid, SCP, PEER, ac, None, components), self.now)
        ind = only(up(self.to_scp(out)))
        assert type(ind) is TcBegin
        return mid, ind.dialogue_id, ind


def decoded(outputs: Sequence[object]) -> TcapMessage:
    return tcap.decode(only(sent(outputs)).data)


# -- dialogue handling --------------------------------------------------------------------------


def test_begin_continue_end_with_aare_accept() -> None:
    link = Link()
    mid, sid, begin = link.open()
    assert begin.application_context == CAP_V2 and begin.called == SCP and begin.calling == PEER
    assert begin.components == (Invoke(1, 0, IDP),)
    # Our TID: 4 octets, first is the worker ID; the dialogue ID is that TID.
    assert sid >> 24 == 1 and link.scp.dialogue_state(sid) is DialogueState.INITIATION_RECEIVED

    out = link.scp.handle_tc(
        TcContinue(sid, CAP_V2, None, (Invoke(1, 23, RRBE, op_class=2),)), link.now
    )
    nu = only(sent(out))
    # Answer goes back where the Begin came from, asks SCCP to return it if undeliverable.
    assert (nu.called, nu.calling, nu.dpc, nu.return_option) == (PEER, SCP, PC_PEER, True)
    msg = tcap.decode(nu.data)
    assert msg.otid == sid.to_bytes(4, "big") and msg.dtid == mid.to_bytes(4, "big")
    assert msg.dialogue == Aare(CAP_V2)  # first backward message carries the AARE
    ind = only(up(link.to_msc(out)))
    assert ind == TcContinue(mid, CAP_V2, None, (Invoke(1, 23, RRBE),))

    # Later messages carry no dialogue portion.
    out = link.msc.handle_tc(
        TcContinue(mid, components=(Invoke(2, 24, ERB, op_class=4),)), link.now
    )
    assert only(up(link.to_scp(out))) == TcContinue(sid, None, None, (Invoke(2, 24, ERB),))
    out = link.scp.handle_tc(TcEnd(sid, components=(Invoke(2, 31, op_class=4),)), link.now)
    nu = only(sent(out))
    assert tcap.decode(nu.data).dialogue is None and nu.return_option is False
    assert only(up(link.to_msc(out))) == TcEnd(mid, None, None, (Invoke(2, 31),))
    assert len(link.scp) == 0 and len(link.msc) == 0
    assert link.scp.next_deadline() is None and link.msc.next_deadline() is None


def test_end_as_first_answer_carries_aare() -> None:
    link = Link()
    mid, sid, _ = link.open(ac=CAP_V3)
    out = link.scp.handle_tc(TcEnd(sid, CAP_V3, None, (Invoke(1, 31, op_class=4),)), link.now)
    assert decoded(out).dialogue == Aare(CAP_V3)
    assert only(up(link.to_msc(out))) == TcEnd(mid, CAP_V3, None, (Invoke(1, 31),))


def test_no_aarq_means_no_aare() -> None:
    link = Link()
    mid, sid, begin = link.open(ac=None)
    assert begin.application_context is None
    out = link.scp.handle_tc(TcEnd(sid, CAP_V2, None, (Invoke(1, 31, op_class=4),)), link.now)
    assert decoded(out).dialogue is None


def test_aare_reject_application_context_not_supported() -> None:
    link = Link()
    mid, sid, _ = link.open(ac=(0, 4, 0, 0, 1, 0, 99, 9))
    out = link.scp.handle_tc(
        TcUAbort(
            sid,
            CAP_V2,
            None,
            DialogueResult.REJECT_PERMANENT,
            DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
        ),
        link.now,
    )
    msg = decoded(out)
    assert msg.message_type is MessageType.ABORT and msg.dtid == mid.to_bytes(4, "big")
    assert msg.dialogue == Aare(CAP_V2, 1, 1, 2)  # names the AC we do support
    assert only(up(link.to_msc(out))) == TcUAbort(
        mid,
        CAP_V2,
        None,
        DialogueResult.REJECT_PERMANENT,
        DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
    )
    assert len(link.scp) == 0 and len(link.msc) == 0


def test_user_abort_with_and_without_dialogue_portion() -> None:
    link = Link()
    mid, sid, _ = link.open()
    out = link.scp.handle_tc(TcUAbort(sid), link.now)
    assert decoded(out).dialogue == Abrt(0)
    assert only(up(link.to_msc(out))) == TcUAbort(mid, CAP_V2, None)

    mid, sid, _ = link.open(ac=None)
    out = link.scp.handle_tc(TcUAbort(sid), link.now)
    assert decoded(out).dialogue is None
    assert only(up(link.to_msc(out))) == TcUAbort(mid)


def test_prearranged_end_sends_nothing() -> None:
    link = Link()
    _, sid, _ = link.open()
    assert link.scp.handle_tc(TcEnd(sid, prearranged=True), link.now) == []
    assert len(link.scp) == 0 and link.scp.next_deadline() is None


def test_received_p_abort_and_end_free_the_dialogue() -> None:
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now))
    p_abort = tcap.encode_message(MessageType.ABORT, dtid=sid.to_bytes(4, "big"), p_abort_cause=4)
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, p_abort, opc=PC_PEER), link.now)
    assert out == [TcPAbort(sid, PAbortCause.RESOURCE_LIMITATION)]
    assert len(link.scp) == 0


def test_first_continue_from_peer_sets_its_tid_and_address() -> None:
    link = Link()
    # The SCP opens (e.g. toward the media server or HLR); the switch answers.
    sid = link.scp.new_dialogue_id()
    # PromptAndCollectUserInformationArg {collectedInfo collectedDigits {min 1, max 1}}
    pacui = Invoke(1, 48, bytes.fromhex("300aa008a006800101810101"))
    out = link.scp.handle_tc(TcBegin(sid, PEER, SCP, CAP_V2, None, (pacui,)), link.now)
    assert (
        only(sent(out)).return_option
        and link.scp.dialogue_state(sid) is DialogueState.INITIATION_SENT
    )
    mid = only(up(link.to_msc(out))).dialogue_id
    # Continue before the peer answered is illegal in state IS.
    bad = link.scp.handle_tc(TcContinue(sid), link.now)
    assert only(logs(bad)).event == "illegal_request" and sent(bad) == []
    result = ReturnResult(1, 48, bytes.fromhex("800403102143"))  # digitsResponse
    out = link.msc.handle_tc(TcContinue(mid, CAP_V2, None, (result,)), link.now)
    ind = only(up(link.to_scp(out)))
    assert ind == TcContinue(sid, CAP_V2, None, (result,))
    assert link.scp.dialogue_state(sid) is DialogueState.ACTIVE
    out = link.scp.handle_tc(TcEnd(sid), link.now)
    assert tcap.decode(only(sent(out)).data).dtid == mid.to_bytes(4, "big")


def test_aare_reject_received_by_initiator() -> None:
    link = Link()
    sid = link.scp.new_dialogue_id()
    out = link.scp.handle_tc(TcBegin(sid, PEER, SCP, CAP_V3), link.now)
    mid = only(up(link.to_msc(out))).dialogue_id
    out = link.msc.handle_tc(
        TcUAbort(
            mid,
            CAP_V2,
            None,
            DialogueResult.REJECT_PERMANENT,
            DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
        ),
        link.now,
    )
    assert only(up(link.to_scp(out))) == TcUAbort(
        sid,
        CAP_V2,
        None,
        DialogueResult.REJECT_PERMANENT,
        DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
    )


def test_protocol_version_not_supported() -> None:
    link = Link()
    begin = tcap.encode(
        TcapMessage(MessageType.BEGIN, otid=b"\x01\x02", dialogue=Aarq(CAP_V2, None, b"\x06\x40"))
    )  # version2 only
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, begin, opc=PC_PEER), link.now)
    _record(out)
    msg = decoded(out)
    assert msg.message_type is MessageType.ABORT and msg.dtid == b"\x01\x02"
    assert msg.dialogue == Aare(CAP_V2, 1, 2, 2)  # provider: no-common-dialogue-portion
    assert up(out) == [] and len(link.scp) == 0


def test_uni_both_ways() -> None:
    link = Link()
    out = link.msc.handle_tc(TcUni(0, SCP, PEER, CAP_V2, None, (Invoke(1, 31),)), link.now)
    ind = only(up(link.to_scp(out)))
    assert type(ind) is TcUni and ind.application_context == CAP_V2
    assert ind.components == (Invoke(1, 31),) and len(link.scp) == 0


# -- timers -------------------------------------------------------------------------------------


def test_idle_timeout_aborts_toward_peer_and_user() -> None:
    link = Link(idle_timeout=30.0)
    mid, sid, _ = link.open()
    assert link.scp.next_deadline() == link.now + 30.0
    link.now += 30.0
    out = link.scp.handle_timer(link.now)
    assert TcUAbort(sid) in out and only(logs(out)).event == "idle_timeout"
    assert decoded(out).dialogue == Abrt(0)
    assert only(up(link.to_msc(out))) == TcUAbort(mid, CAP_V2, None)
    assert len(link.scp) == 0 and len(link.msc) == 0


def test_idle_timeout_of_active_dialogue_without_ac() -> None:
    link = Link(idle_timeout=10.0)
    mid, sid, _ = link.open(ac=None)
    link.to_msc(link.scp.handle_tc(TcContinue(sid), link.now))
    link.now += 5
    link.to_scp(link.msc.handle_tc(TcContinue(mid), link.now))  # resets the idle timer
    assert link.scp.handle_timer(link.now + 9) == []
    out = link.scp.handle_timer(link.now + 10)
    assert decoded(out).dialogue is None  # U-Abort without dialogue portion
    assert only(up(link.to_msc(out))) == TcUAbort(mid)


def test_idle_timeout_before_peer_answered_is_local() -> None:
    link = Link(idle_timeout=10.0)
    sid = link.scp.new_dialogue_id()
    link.scp.handle_tc(TcBegin(sid, PEER, SCP, CAP_V2), link.now)
    out = link.scp.handle_timer(link.now + 10)
    assert sent(out) == [] and TcUAbort(sid) in out and len(link.scp) == 0


def test_invoke_timer_expiry_gives_l_cancel() -> None:
    link = Link(invoke_timeout=10.0)
    mid, sid, _ = link.open()
    out = link.scp.handle_tc(
        TcContinue(
            sid,
            CAP_V2,
            None,
            (
                Invoke(5, 48, PACUI, op_class=1, timeout=3.0),  # PACUI: result expected
                Invoke(6, 23, RRBE, op_class=2),  # default timer
                Invoke(7, 31, op_class=4),  # class 4: no timer at all
            ),
        ),
        link.now,
    )
    link.to_msc(out)
    assert link.scp.next_deadline() == link.now + 3.0
    assert link.scp.handle_timer(link.now + 3.0) == [TcComponentEvent(sid, LCancel(5, 48))]
    assert link.scp.handle_timer(link.now + 10.0) == [TcComponentEvent(sid, LCancel(6, 23))]
    # A result after the cancel is for an unknown invoke: Rejected.
    out = link.to_scp(
        link.msc.handle_tc(TcContinue(mid, components=(ReturnResult(5, 48),)), link.now + 11)
    )
    assert tcap.decode(only(sent(out)).data).components == (
        Reject(5, ProblemType.RETURN_RESULT, 0, "remote"),
    )


def test_result_stops_the_invoke_timer() -> None:
    link = Link(invoke_timeout=10.0, idle_timeout=60.0)
    mid, sid, _ = link.open()
    link.to_msc(
        link.scp.handle_tc(TcContinue(sid, CAP_V2, None, (Invoke(5, 48, op_class=1),)), link.now)
    )
    out = link.to_scp(
        link.msc.handle_tc(TcContinue(mid, components=(ReturnResult(5, 48, DIGITS),)), link.now)
    )
    assert only(up(out)) == TcContinue(sid, None, None, (ReturnResult(5, 48, DIGITS),))
    assert link.scp.next_deadline() == link.now + 60.0  # only the idle timer is left


# -- transaction errors ---------------------------------------------------------------------------


def test_continue_for_unknown_dtid_gets_p_abort() -> None:
    link = Link()
    cont = tcap.encode_message(MessageType.CONTINUE, otid=b"\xaa\xbb", dtid=b"\x01\x00\x00\x63")
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, cont, opc=PC_PEER), link.now)
    _record(out)
    nu = only(sent(out))
    assert (nu.called, nu.calling, nu.dpc) == (PEER, SCP, PC_PEER)
    assert tcap.decode(nu.data) == TcapMessage(MessageType.ABORT, dtid=b"\xaa\xbb", p_abort_cause=1)
    assert only(logs(out)).event == "unknown_dtid"


def test_continue_for_another_worker_is_dropped_not_aborted() -> None:
    """ARCHITECTURE §5: the DTID names worker 7's live dialogue; a P-Abort would kill it."""
    link = Link()
    cont = tcap.encode_message(MessageType.CONTINUE, otid=b"\xaa", dtid=b"\x07\x00\x00\x01")
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, cont), link.now)
    assert sent(out) == []
    log = only(logs(out))
    assert log.event == "foreign_dtid" and "worker 7" in log.detail


@pytest.mark.parametrize("mtype", [MessageType.END, MessageType.ABORT])
def test_end_or_abort_for_unknown_dtid_is_only_logged(mtype: MessageType) -> None:
    link = Link()
    data = tcap.encode_message(mtype, dtid=b"\x01\x00\x00\x63")
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, data), link.now)
    assert sent(out) == [] and only(logs(out)).event == "unknown_dtid"


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (bytes.fromhex("6306480401020304"), PAbortCause.UNRECOGNIZED_MESSAGE_TYPE),
        (bytes.fromhex("62084804010203040400"), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
        (
            bytes.fromhex("620a48040102030449020a0b"),
            PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION,
        ),
    ],
    ids=["unknown_type", "junk_after_otid", "dtid_in_begin"],
)
def test_bad_transaction_portion_gets_p_abort(data: bytes, cause: PAbortCause) -> None:
    link = Link()
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, data, opc=PC_PEER), link.now)
    _record(out)
    assert decoded(out) == TcapMessage(
        MessageType.ABORT, dtid=b"\x01\x02\x03\x04", p_abort_cause=cause
    )
    assert only(logs(out)).event == "decode_error" and len(link.scp) == 0


def test_broken_continue_on_open_dialogue_aborts_it() -> None:
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now))
    # Both TIDs readable, then a stray OCTET STRING where only portions may follow.
    broken = _continue(mid, sid, b"\x04\x00")
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, broken, opc=PC_PEER), link.now)
    assert TcPAbort(sid, PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION) in out
    assert len(link.scp) == 0


def test_resource_limitation() -> None:
    link = Link(max_dialogues=1)
    link.open()
    mid = link.msc.new_dialogue_id()
    out = link.to_scp(
        link.msc.handle_tc(TcBegin(mid, SCP, PEER, CAP_V2, None, (Invoke(1, 0, IDP),)), link.now)
    )
    assert decoded(out) == TcapMessage(
        MessageType.ABORT,
        dtid=mid.to_bytes(4, "big"),
        p_abort_cause=PAbortCause.RESOURCE_LIMITATION,
    )
    assert only(up(link.to_msc(out))) == TcPAbort(mid, PAbortCause.RESOURCE_LIMITATION)
    # And for the TC-user's own TC-BEGIN.
    sid = link.scp.new_dialogue_id()
    out = link.scp.handle_tc(TcBegin(sid, PEER, SCP, CAP_V2), link.now)
    assert TcPAbort(sid, PAbortCause.RESOURCE_LIMITATION) in out and sent(out) == []


def test_notice_for_returned_message() -> None:
    link = Link()
    _, sid, _ = link.open()
    nu = only(sent(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now)))
    out = link.scp.handle_n_notice(NNotice(nu.called, nu.calling, 1, nu.data), link.now)
    assert out == [TcNotice(sid, 1)]
    out = link.scp.handle_n_notice(NNotice(nu.called, nu.calling, 1, b"\x64\x00"), link.now)
    assert only(logs(out)).event == "returned_message"


def test_requests_for_unknown_dialogue_are_logged() -> None:
    link = Link()
    for req in (TcContinue(12345), TcEnd(12345), TcUAbort(12345)):
        assert only(logs(link.scp.handle_tc(req, link.now))).event == "unknown_dialogue"


# -- component errors -----------------------------------------------------------------------------


def _continue(mid: int, sid: int, components: bytes) -> bytes:
    return tcap.encode_message(
        MessageType.CONTINUE,
        otid=mid.to_bytes(4, "big"),
        dtid=sid.to_bytes(4, "big"),
        component_portion=components,
    )


def test_duplicate_invoke_id_is_rejected() -> None:
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now))
    # The switch re-uses invoke ID 1 (the InitialDP's, not yet answered). Its own TCAP would
    # refuse that, so the bytes are built by hand.
    dup = bytes.fromhex("6c0aa1080201010201183000")
    out = link.scp.handle_n_unitdata(
        NUnitdata(SCP, PEER, _continue(mid, sid, dup), opc=PC_PEER), link.now
    )
    _record(out)
    assert TcComponentEvent(sid, Reject(1, ProblemType.INVOKE, 0, "local")) in out
    assert only([o for o in up(out) if type(o) is TcContinue]).components == ()
    ind = only(up(link.to_msc(out)))  # the Reject goes back at once in a Continue
    assert ind == TcContinue(mid, None, None, (Reject(1, ProblemType.INVOKE, 0, "remote"),))


def test_invoke_linked_to_no_active_invoke_is_rejected() -> None:
    """Q.774 §3.2.2.2: linked ID 9 names nothing we invoked; linked ID 3 (our PACUI) does."""
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(
        link.scp.handle_tc(
            TcContinue(
                sid, CAP_V2, None, (Invoke(3, 48, bytes.fromhex("3007a005a003810101"), op_class=1),)
            ),
            link.now,
        )
    )
    out = link.to_scp(
        link.msc.handle_tc(
            TcContinue(
                mid,
                components=(
                    Invoke(2, 49, b"\x05\x00", linked_id=9),
                    Invoke(4, 49, b"\x05\x00", linked_id=3),
                ),
            ),
            link.now,
        )
    )
    _record(out)
    ind = only([o for o in up(out) if type(o) is TcContinue])
    assert ind.components == (Invoke(4, 49, b"\x05\x00", linked_id=3),)
    assert TcComponentEvent(sid, Reject(2, ProblemType.INVOKE, 5, "local")) in out
    back = only(up(link.to_msc(out)))
    assert back == TcContinue(mid, None, None, (Reject(2, ProblemType.INVOKE, 5, "remote"),))


def test_answered_invoke_id_may_be_reused() -> None:
    link = Link()
    mid, sid, _ = link.open(components=(Invoke(1, 0, IDP),))
    link.to_msc(link.scp.handle_tc(TcContinue(sid, CAP_V2, None, (ReturnResult(1),)), link.now))
    out = link.to_scp(
        link.msc.handle_tc(TcContinue(mid, components=(Invoke(1, 24, ERB),)), link.now)
    )
    assert only(up(out)).components == (Invoke(1, 24, ERB),)


@pytest.mark.parametrize(
    ("component", "problem"),
    [
        (ReturnResult(77, 48), (ProblemType.RETURN_RESULT, 0)),
        (ReturnError(77, 7), (ProblemType.RETURN_ERROR, 0)),
        (ReturnResult(6, 23), (ProblemType.RETURN_RESULT, 1)),  # class 2: no result expected
    ],
    ids=["result_unknown_id", "error_unknown_id", "result_unexpected"],
)
def test_outcome_without_matching_invoke_is_rejected(
    component: Any, problem: tuple[int, int]
) -> None:
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(
        link.scp.handle_tc(
            TcContinue(sid, CAP_V2, None, (Invoke(6, 23, RRBE, op_class=2),)), link.now
        )
    )
    out = link.to_scp(link.msc.handle_tc(TcContinue(mid, components=(component,)), link.now))
    assert TcComponentEvent(sid, Reject(component.invoke_id, *problem, "local")) in out
    assert tcap.decode(only(sent(out)).data).components == (
        Reject(component.invoke_id, problem[0], problem[1], "remote"),
    )


def test_malformed_component_in_begin() -> None:
    link = Link()
    comps = bytes.fromhex(
        "6c0fa108020101020100" + "3000" + "a503020105"
    )  # IDP, then an [5] component
    begin = tcap.encode_message(
        MessageType.BEGIN,
        otid=b"\x00\x00\x00\x09",
        dialogue_portion=tcap.encode_dialogue_portion(Aarq(CAP_V2)),
    )
    begin = begin[:1] + bytes((begin[1] + len(comps),)) + begin[2:] + comps
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, begin, opc=PC_PEER), link.now)
    ind = only([o for o in out if type(o) is TcBegin])
    assert ind.components == (Invoke(1, 0, b"\x30\x00"),)
    sid = ind.dialogue_id
    assert TcComponentEvent(sid, Reject(5, ProblemType.GENERAL, 0, "local")) in out
    assert sent(out) == []  # the Reject waits for the TC-user's first answer
    out = link.scp.handle_tc(TcEnd(sid, CAP_V2, None, (Invoke(1, 31, op_class=4),)), link.now)
    _record(out)
    assert decoded(out).components == (Reject(5, ProblemType.GENERAL, 0, "remote"), Invoke(1, 31))


def test_malformed_component_in_continue() -> None:
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now))
    bad = bytes.fromhex("6c05a103020109")  # Invoke without an opcode: mistyped
    out = link.scp.handle_n_unitdata(
        NUnitdata(SCP, PEER, _continue(mid, sid, bad), opc=PC_PEER), link.now
    )
    _record(out)
    assert TcComponentEvent(sid, Reject(9, ProblemType.GENERAL, 1, "local")) in out
    assert decoded(out).components == (Reject(9, ProblemType.GENERAL, 1, "remote"),)


def test_reject_frees_our_invoke() -> None:
    link = Link(invoke_timeout=5.0)
    mid, sid, _ = link.open()
    link.to_msc(
        link.scp.handle_tc(TcContinue(sid, CAP_V2, None, (Invoke(3, 48, op_class=1),)), link.now)
    )
    out = link.to_scp(
        link.msc.handle_tc(
            TcContinue(mid, components=(Reject(3, ProblemType.INVOKE, 1),)), link.now
        )
    )
    assert only(up(out)).components == (Reject(3, ProblemType.INVOKE, 1, "user"),)
    assert [o for o in link.scp.handle_timer(link.now + 5) if type(o) is TcComponentEvent] == []


def test_duplicate_invoke_id_from_tc_user_is_refused_locally() -> None:
    link = Link()
    mid, sid, _ = link.open()
    out = link.scp.handle_tc(
        TcContinue(sid, CAP_V2, None, (Invoke(4, 48, op_class=1), Invoke(4, 48, op_class=1))),
        link.now,
    )
    assert TcComponentEvent(sid, Reject(4, ProblemType.INVOKE, 0, "local")) in out
    assert decoded(out).components == (Invoke(4, 48),)


def test_new_invoke_id_skips_pending_ones() -> None:
    link = Link()
    _, sid, _ = link.open()
    first = link.scp.new_invoke_id(sid)
    link.scp.handle_tc(TcContinue(sid, CAP_V2, None, (Invoke(first, 48),)), link.now)
    second = link.scp.new_invoke_id(sid)
    assert first == 1 and second == 2 and -128 <= second <= 127


def test_encode_error_is_reported_not_raised() -> None:
    link = Link()
    _, sid, _ = link.open()
    out = link.scp.handle_tc(TcContinue(sid, CAP_V2, None, (Invoke(500, 48),)), link.now)
    assert only(logs(out)).event == "encode_error"
    assert link.scp.dialogue_state(sid) is DialogueState.INITIATION_RECEIVED


# Dialogue portion whose EXTERNAL names an unknown abstract syntax {0 1 2 3 4 5 6}.
BAD_DIALOGUE = bytes.fromhex("6b0a28080606010203040506")


@pytest.mark.parametrize("mtype", [MessageType.CONTINUE, MessageType.END])
def test_bad_dialogue_portion_on_open_dialogue(mtype: MessageType) -> None:
    link = Link()
    mid, sid, _ = link.open()
    link.to_msc(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now))
    data = tcap.encode_message(
        mtype,
        otid=mid.to_bytes(4, "big") if mtype is MessageType.CONTINUE else None,
        dtid=sid.to_bytes(4, "big"),
        dialogue_portion=BAD_DIALOGUE,
    )
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, data, opc=PC_PEER), link.now)
    _record(out)
    assert TcPAbort(sid, ABNORMAL_DIALOGUE) in out and len(link.scp) == 0
    if mtype is MessageType.CONTINUE:  # the peer's side is still open: ABRT from the provider
        assert decoded(out).dialogue == Abrt(1)
        assert only(up(link.to_msc(out))) == TcPAbort(mid, ABNORMAL_DIALOGUE)
    else:
        assert sent(out) == []


def test_begin_with_aare_instead_of_aarq() -> None:
    link = Link()
    data = tcap.encode(TcapMessage(MessageType.BEGIN, otid=b"\x05", dialogue=Aare(CAP_V2)))
    out = link.scp.handle_n_unitdata(NUnitdata(SCP, PEER, data, opc=PC_PEER), link.now)
    _record(out)
    assert decoded(out) == TcapMessage(MessageType.ABORT, dtid=b"\x05", dialogue=Abrt(1))
    assert up(out) == [] and len(link.scp) == 0


def test_class_1_answers_keep_the_peers_sls() -> None:
    link = Link()
    mid = link.msc.new_dialogue_id()
    data = only(sent(link.msc.handle_tc(TcBegin(mid, SCP, PEER, CAP_V2), link.now))).data
    ind = NUnitdata(SCP, PEER, data, protocol_class=1, sequence_control=7, opc=PC_PEER)
    sid = only(link.scp.handle_n_unitdata(ind, link.now)).dialogue_id
    nu = only(sent(link.scp.handle_tc(TcContinue(sid, CAP_V2), link.now)))
    assert (nu.protocol_class, nu.sequence_control) == (1, 7)


def test_fifo_timers() -> None:
    from scp.core.tcap import FifoTimers

    t = FifoTimers()
    t.start("a", 0.0, 10.0)
    t.start("b", 1.0, 3.0)
    t.start("c", 2.0, 10.0)
    t.start("a", 5.0, 10.0)  # re-armed: now after "c"
    assert t.next_deadline() == 4.0 and len(t) == 3
    t.cancel("b")
    t.cancel("zz")
    assert t.next_deadline() == 12.0 and not t.running("b")
    t.start("d", 6.0, 1.0)
    assert t.expired(11.0) == ["d"]
    assert t.expired(100.0) == ["c", "a"]
    assert t.next_deadline() is None and len(t) == 0


# -- Wireshark reads everything we sent -------------------------------------------------------------


def test_zz_every_emitted_message_is_clean_in_tshark() -> None:
    if not EMITTED:
        pytest.skip("run with the rest of the module")
    assert_tshark_clean(EMITTED)


def test_one_peer_cannot_hold_more_than_its_share_of_dialogues() -> None:
    """[tcap] max_dialogues_per_peer: a peer (by OPC) past its share gets an ABORT with
    resourceLimitation, while another peer still opens dialogues; a closed dialogue frees a
    place in the share."""
    link = Link(max_dialogues=10, max_dialogues_per_peer=2)
    opened = [link.open() for _ in range(2)]
    mid = link.msc.new_dialogue_id()
    out = link.to_scp(
        link.msc.handle_tc(TcBegin(mid, SCP, PEER, CAP_V2, None, (Invoke(1, 0, IDP),)), link.now)
    )
    assert decoded(out) == TcapMessage(
        MessageType.ABORT,
        dtid=mid.to_bytes(4, "big"),
        p_abort_cause=PAbortCause.RESOURCE_LIMITATION,
    )
    assert any("its share" in x.detail for x in logs(out))
    # another point code is not held back by the first one's share
    mid2 = link.msc.new_dialogue_id()
    begin = link.msc.handle_tc(
        TcBegin(mid2, SCP, PEER, CAP_V2, None, (Invoke(1, 0, IDP),)), link.now
    )
    (nu,) = sent(begin)
    other = link.scp.handle_n_unitdata(
        NUnitdata(nu.called, nu.calling, nu.data, opc=PC_PEER + 1, dpc=PC_SCP), link.now
    )
    assert type(only(up(other))) is TcBegin
    # the first peer's dialogue ends: its share has room again
    link.scp.handle_tc(TcEnd(opened[0][1]), link.now)
    assert type(link.open()[2]) is TcBegin
    assert len(link.scp) == 3


def test_one_association_cannot_dodge_its_share_with_several_point_codes() -> None:
    """[tcap] max_dialogues_per_association: dialogues opened on one association count against
    its share whatever OPC each BEGIN carries; another association still opens dialogues."""
    link = Link(max_dialogues=10, max_dialogues_per_peer=2, max_dialogues_per_association=3)

    def begin_from(opc: int, assoc: int | None) -> list[object]:
        mid = link.msc.new_dialogue_id()
        (nu,) = sent(
            link.msc.handle_tc(TcBegin(mid, SCP, PEER, CAP_V2, None, (Invoke(1, 0, IDP),)), 0.0)
        )
        ind = NUnitdata(nu.called, nu.calling, nu.data, opc=opc, dpc=PC_SCP)
        return list(link.scp.handle_n_unitdata(ind, link.now, assoc))

    # three point codes, one dialogue each, on association 1: its share of 3 is full
    for opc in (PC_PEER, PC_PEER + 1, PC_PEER + 2):
        assert type(only(up(begin_from(opc, 1)))) is TcBegin
    out = begin_from(PC_PEER + 3, 1)  # a fourth point code, its own OPC share empty
    assert up(out) == []
    assert any("association 1 holds 3 dialogues, its share" in x.detail for x in logs(out))
    # another association is not held back
    assert type(only(up(begin_from(PC_PEER + 3, 2)))) is TcBegin
    assert len(link.scp) == 4
    # a dialogue of association 1 ends: its share has room again
    did = next(iter(link.scp.open_dialogues()))
    link.scp.handle_tc(TcEnd(did), link.now)
    assert type(only(up(begin_from(PC_PEER + 4, 1)))) is TcBegin
