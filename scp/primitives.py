"""Service primitives exchanged between the layers of the stack.

The layers talk to each other only in these primitives, named as the specs name them:

* MTP-TRANSFER (Q.704 §2, carried by M3UA per RFC 4666 §1.4.2): M3UA <-> SCCP.
* N-UNITDATA / N-NOTICE (Q.711 §6.2.2, Q.714 §4.1): SCCP <-> TCAP.
* TC-BEGIN / TC-CONTINUE / TC-END / TC-U-ABORT / TC-P-ABORT / TC-UNI / TC-NOTICE and the
  component primitives TC-INVOKE / TC-RESULT-L / TC-RESULT-NL / TC-U-ERROR / TC-U-REJECT /
  TC-L-CANCEL / TC-L-REJECT / TC-R-REJECT (Q.771 §3.1, §3.2): TCAP <-> TC-user (CAP/INAP/MAP).

Each is a frozen dataclass used for both the request and the indication direction: whether it
is ``.req`` or ``.ind`` follows from which way it crosses the layer boundary. Address and
component payloads stay bytes here; the typed CAP/INAP/MAP values live in ``scp.codecs``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# MTP-TRANSFER (M3UA user part, RFC 4666 §3.3.1 Protocol Data)
# ---------------------------------------------------------------------------------------------

SI_SCCP = 3
"""Service indicator of SCCP (Q.704 §14.2.1)."""


@dataclass(frozen=True, slots=True)
class MtpTransfer:
    """MTP-TRANSFER primitive: one user-part message with its routing label."""

    opc: int
    dpc: int
    si: int
    ni: int
    mp: int
    sls: int
    data: bytes


# ---------------------------------------------------------------------------------------------
# SCCP addressing (Q.713 §3.4)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GlobalTitle:
    """A global title (Q.713 §3.4.2.3) in one of the ITU formats, GT indicator 1 to 4.

    ``digits`` is the address signal as a string of ``0-9`` (and ``a-e``/``f`` filler kept
    out: odd/even is derived from the length). Fields that a GT indicator does not carry are
    ignored when encoding: gti 1 has ``nai`` only, gti 2 ``tt`` only, gti 3 ``tt``, ``np``
    and the encoding scheme, gti 4 all of them.
    """

    digits: str
    gti: int = 4
    tt: int = 0
    np: int = 1  # E.164
    nai: int = 4  # international number


class PointCodeFormat(enum.Enum):
    """How wide a signalling point code is, network by network.

    ITU: 14 bits (Q.704 §2.2.3), two octets in an SCCP address or SCMG message (Q.713 §3.4.2.1,
    §5.1). CHINA: 24 bits in China's national signalling network (GF 001-9001 for MTP3,
    YDN 038-1997 for SCCP), three octets, least significant first, with the ITU address
    indicator. M3UA carries either in its 32-bit OPC and DPC fields (RFC 4666 §3.3.1).
    """

    ITU = "itu"
    CHINA = "china"

    @property
    def max_pc(self) -> int:
        """The largest point code of the format."""
        return 0x3FFF if self is PointCodeFormat.ITU else 0xFFFFFF

    @property
    def octets(self) -> int:
        """Octets of a point code in SCCP addresses and SCMG messages."""
        return 2 if self is PointCodeFormat.ITU else 3


class RoutingIndicator(enum.IntEnum):
    """Routing indicator bit of the address indicator (Q.713 §3.4.1)."""

    GT = 0
    SSN = 1


@dataclass(frozen=True, slots=True)
class SccpAddress:
    """Called or calling party address (Q.713 §3.4): routing indicator, PC, SSN and GT."""

    ri: RoutingIndicator = RoutingIndicator.SSN
    pc: int | None = None
    ssn: int | None = None
    gt: GlobalTitle | None = None


# ---------------------------------------------------------------------------------------------
# N-UNITDATA / N-NOTICE (Q.711 §6.2.2.2, Q.714 §4.1)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NUnitdata:
    """N-UNITDATA primitive: one connectionless user message (TCAP PDU in ``data``).

    ``protocol_class`` 0 (no sequencing) or 1 (in sequence, ``sequence_control`` picks the
    SLS). ``return_option`` asks for a UDTS/XUDTS if the message cannot be delivered.
    ``opc``/``dpc`` are filled on indications so answers can be routed back by point code.
    """

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_option: bool = False
    sequence_control: int = 0
    importance: int | None = None
    opc: int | None = None
    dpc: int | None = None


class ReturnCause(enum.IntEnum):
    """SCCP return cause (Q.713 §3.12)."""

    NO_TRANSLATION_NATURE = 0
    NO_TRANSLATION_ADDRESS = 1
    SUBSYSTEM_CONGESTION = 2
    SUBSYSTEM_FAILURE = 3
    UNEQUIPPED_USER = 4
    MTP_FAILURE = 5
    NETWORK_CONGESTION = 6
    UNQUALIFIED = 7
    ERROR_IN_MESSAGE_TRANSPORT = 8
    ERROR_IN_LOCAL_PROCESSING = 9
    DESTINATION_CANNOT_REASSEMBLE = 10
    SCCP_FAILURE = 11
    HOP_COUNTER_VIOLATION = 12
    SEGMENTATION_NOT_SUPPORTED = 13
    SEGMENTATION_FAILURE = 14


@dataclass(frozen=True, slots=True)
class NNotice:
    """N-NOTICE primitive: a message we sent came back (UDTS/XUDTS) with ``reason``."""

    called: SccpAddress
    calling: SccpAddress
    reason: int
    data: bytes
    importance: int | None = None


# ---------------------------------------------------------------------------------------------
# TCAP component primitives (Q.771 §3.2)
# ---------------------------------------------------------------------------------------------

Opcode = int | tuple[int, ...]
"""An operation or error code: a local INTEGER, or a global OBJECT IDENTIFIER as arcs."""


@dataclass(frozen=True, slots=True)
class Invoke:
    """TC-INVOKE: ask the peer to perform ``opcode`` with the BER-encoded ``parameter``."""

    invoke_id: int
    opcode: Opcode
    parameter: bytes | None = None
    linked_id: int | None = None
    # Operation class (Q.771 §2.3.1.2): 1 both outcomes, 2 error only, 3 result only,
    # 4 neither. Used only for our own invokes to decide when the invoke state is freed.
    op_class: int = 1
    # Invocation timer in seconds for our own invokes (Q.774 §3.2.1.1.3); None: default.
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ReturnResult:
    """TC-RESULT-L (``last``) or TC-RESULT-NL: the outcome of an invoke that succeeded.

    Without a ``parameter`` (an operation that returns no value) it goes out as the invoke ID
    alone (Q.773 §3.2); ``opcode`` is then for the TC-user's logs only. A received result
    that names an opcode without a parameter decodes here as ``opcode`` set, no parameter.
    """

    invoke_id: int
    opcode: Opcode | None = None
    parameter: bytes | None = None
    last: bool = True


@dataclass(frozen=True, slots=True)
class ReturnError:
    """TC-U-ERROR: the invoke failed with ``error_code`` and an optional ``parameter``."""

    invoke_id: int
    error_code: Opcode
    parameter: bytes | None = None


class ProblemType(enum.IntEnum):
    """Reject problem families (Q.773 §3.2.2.1, context tags of Problem)."""

    GENERAL = 0
    INVOKE = 1
    RETURN_RESULT = 2
    RETURN_ERROR = 3


@dataclass(frozen=True, slots=True)
class Reject:
    """TC-U-REJECT (``source='user'``), TC-L-REJECT (``'local'``) or TC-R-REJECT (``'remote'``).

    ``invoke_id`` is None when the rejected component's ID could not be read.
    """

    invoke_id: int | None
    problem_type: ProblemType
    problem_code: int
    source: str = "user"


@dataclass(frozen=True, slots=True)
class LCancel:
    """TC-L-CANCEL: our invoke's timer expired with no outcome (Q.774 §3.2.1.1.3)."""

    invoke_id: int
    opcode: Opcode | None = None


Component = Invoke | ReturnResult | ReturnError | Reject


# ---------------------------------------------------------------------------------------------
# TCAP dialogue primitives (Q.771 §3.1)
# ---------------------------------------------------------------------------------------------

ApplicationContext = tuple[int, ...]
"""An application context name as OBJECT IDENTIFIER arcs, e.g. (0, 4, 0, 0, 1, 0, 50, 1)."""


class DialogueResult(enum.IntEnum):
    """Associate-result of the AARE (Q.773 §4.2.1 dialogue PDUs)."""

    ACCEPTED = 0
    REJECT_PERMANENT = 1


class DialogueDiagnostic(enum.IntEnum):
    """Associate-source-diagnostic, dialogue-service-user (Q.773 §4.2.1)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2


class PAbortCause(enum.IntEnum):
    """P-AbortCause (Q.773 §3.1, Q.774 §3.2.1.1.5)."""

    UNRECOGNIZED_MESSAGE_TYPE = 0
    UNRECOGNIZED_TRANSACTION_ID = 1
    BADLY_FORMATTED_TRANSACTION_PORTION = 2
    INCORRECT_TRANSACTION_PORTION = 3
    RESOURCE_LIMITATION = 4
    # Local only, never on the wire: the TC-P-ABORT "abnormal dialogue" of Q.771 §3.1.2.2.2.5
    # (a provider ABRT or a dialogue portion we cannot accept on an open dialogue).
    ABNORMAL_DIALOGUE = 126


@dataclass(frozen=True, slots=True)
class TcBegin:
    """TC-BEGIN: a dialogue opens, with its application context and first components."""

    dialogue_id: int
    called: SccpAddress
    calling: SccpAddress
    application_context: ApplicationContext | None = None
    user_information: bytes | None = None
    components: tuple[Component, ...] = ()


@dataclass(frozen=True, slots=True)
class TcContinue:
    """TC-CONTINUE: more components in an open dialogue.

    As the first answer to a TC-BEGIN it carries the AARE: ``application_context`` echoes the
    accepted context. ``calling`` may change our address on the first backward message.
    """

    dialogue_id: int
    application_context: ApplicationContext | None = None
    user_information: bytes | None = None
    components: tuple[Component, ...] = ()
    calling: SccpAddress | None = None


@dataclass(frozen=True, slots=True)
class TcEnd:
    """TC-END: the dialogue closes; ``prearranged`` ends locally with nothing sent."""

    dialogue_id: int
    application_context: ApplicationContext | None = None
    user_information: bytes | None = None
    components: tuple[Component, ...] = ()
    prearranged: bool = False


@dataclass(frozen=True, slots=True)
class TcUAbort:
    """TC-U-ABORT: the TC-user aborts the dialogue.

    A refused TC-BEGIN is a TC-U-ABORT carrying an AARE with ``result=REJECT_PERMANENT`` and
    ``diagnostic`` (Q.771 §3.1.2.2.2.4): e.g. the application context is not supported, with
    ``application_context`` naming the one we would accept. Otherwise an ABRT
    (dialogue-service-user) with ``user_information``.
    """

    dialogue_id: int
    application_context: ApplicationContext | None = None
    user_information: bytes | None = None
    result: DialogueResult | None = None
    diagnostic: DialogueDiagnostic | None = None


@dataclass(frozen=True, slots=True)
class TcPAbort:
    """TC-P-ABORT: TCAP itself aborted the dialogue with ``cause``."""

    dialogue_id: int
    cause: PAbortCause


@dataclass(frozen=True, slots=True)
class TcUni:
    """TC-UNI: components with no dialogue (Q.771 §3.1.2.1)."""

    dialogue_id: int
    called: SccpAddress
    calling: SccpAddress
    application_context: ApplicationContext | None = None
    user_information: bytes | None = None
    components: tuple[Component, ...] = ()


@dataclass(frozen=True, slots=True)
class TcNotice:
    """TC-NOTICE: SCCP returned a message of this dialogue (Q.771 §3.1.2.2.2.6)."""

    dialogue_id: int
    reason: int


@dataclass(frozen=True, slots=True)
class TcComponentEvent:
    """A locally generated component indication on an open dialogue (TC-L-CANCEL, TC-L-REJECT)."""

    dialogue_id: int
    component: LCancel | Reject = field()


TcPrimitive = (
    TcBegin | TcContinue | TcEnd | TcUAbort | TcPAbort | TcUni | TcNotice | TcComponentEvent
)
