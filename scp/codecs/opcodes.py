"""Operation and error codes of CAP, INAP and MAP: one table per protocol, defined here only.

Each table is an :class:`~enum.IntEnum` whose members carry the spec's name for the code
(``CapOpcode.INITIAL_DP.spec_name == "initialDP"``), so code everywhere compares wire values
with names (``comp.opcode == MapOpcode.ALERT_SERVICE_CENTRE``) and the replay ladder shows the
spec's names. The codes and names are the ROS ``local`` codes of the ASN.1 (X.880 §9): CAP
from TS 29.078, INAP CS-1 from ETS 300 374-1 §6.4 (ITU-T Q.1218 §6 numbering), MAP from
TS 29.002 §17. tests/unit/test_codecs_opcodes.py proves each table equal to the compiled
ASN.1 the codecs read (pycrate's CAP and MAP modules, our INAP transcription).

This module imports nothing heavy: the service layer and the tools use it without loading
any ASN.1.
"""

from __future__ import annotations

import enum
from typing import Self

__all__ = [
    "Code",
    "CapOpcode",
    "CapErrorCode",
    "InapOpcode",
    "InapErrorCode",
    "MapOpcode",
    "MapErrorCode",
    "spec_names",
]


class Code(enum.IntEnum):
    """A ROS operation or error code (an int on the wire) with the spec's name for it."""

    spec_name: str

    def __new__(cls, code: int, spec_name: str) -> Self:
        member = int.__new__(cls, code)
        member._value_ = code
        member.spec_name = spec_name
        return member


def spec_names(table: type[Code]) -> dict[int, str]:
    """Code -> spec name of every member of ``table`` (plain int keys)."""
    return {int(member): member.spec_name for member in table}


class CapOpcode(Code):
    """CAP operation codes (TS 29.078, module CAP-operationcodes): the circuit-switched call
    operations of the gsmSSF-gsmSCF and gsmSCF-gsmSRF packages, the ones ``cap.CODEC`` reads."""

    INITIAL_DP = 0, "initialDP"
    ASSIST_REQUEST_INSTRUCTIONS = 16, "assistRequestInstructions"
    ESTABLISH_TEMPORARY_CONNECTION = 17, "establishTemporaryConnection"
    DISCONNECT_FORWARD_CONNECTION = 18, "disconnectForwardConnection"
    CONNECT_TO_RESOURCE = 19, "connectToResource"
    CONNECT = 20, "connect"
    RELEASE_CALL = 22, "releaseCall"
    REQUEST_REPORT_BCSM_EVENT = 23, "requestReportBCSMEvent"
    EVENT_REPORT_BCSM = 24, "eventReportBCSM"
    COLLECT_INFORMATION = 27, "collectInformation"
    CONTINUE = 31, "continue"
    INITIATE_CALL_ATTEMPT = 32, "initiateCallAttempt"
    RESET_TIMER = 33, "resetTimer"
    FURNISH_CHARGING_INFORMATION = 34, "furnishChargingInformation"
    APPLY_CHARGING = 35, "applyCharging"
    APPLY_CHARGING_REPORT = 36, "applyChargingReport"
    CALL_GAP = 41, "callGap"
    CALL_INFORMATION_REPORT = 44, "callInformationReport"
    CALL_INFORMATION_REQUEST = 45, "callInformationRequest"
    SEND_CHARGING_INFORMATION = 46, "sendChargingInformation"
    PLAY_ANNOUNCEMENT = 47, "playAnnouncement"
    PROMPT_AND_COLLECT_USER_INFORMATION = 48, "promptAndCollectUserInformation"
    SPECIALIZED_RESOURCE_REPORT = 49, "specializedResourceReport"
    CANCEL = 53, "cancel"
    ACTIVITY_TEST = 55, "activityTest"
    DFC_WITH_ARGUMENT = 86, "dFCWithArgument"
    CONTINUE_WITH_ARGUMENT = 88, "continueWithArgument"
    DISCONNECT_LEG = 90, "disconnectLeg"
    MOVE_LEG = 93, "moveLeg"
    SPLIT_LEG = 95, "splitLeg"
    ENTITY_RELEASED = 96, "entityReleased"
    PLAY_TONE = 97, "playTone"


class CapErrorCode(Code):
    """CAP error codes (TS 29.078, module CAP-errorcodes; ``canceled`` as CAP spells it)."""

    CANCELED = 0, "canceled"
    CANCEL_FAILED = 1, "cancelFailed"
    ETC_FAILED = 3, "eTCFailed"
    IMPROPER_CALLER_RESPONSE = 4, "improperCallerResponse"
    MISSING_CUSTOMER_RECORD = 6, "missingCustomerRecord"
    MISSING_PARAMETER = 7, "missingParameter"
    PARAMETER_OUT_OF_RANGE = 8, "parameterOutOfRange"
    REQUESTED_INFO_ERROR = 10, "requestedInfoError"
    SYSTEM_FAILURE = 11, "systemFailure"
    TASK_REFUSED = 12, "taskRefused"
    UNAVAILABLE_RESOURCE = 13, "unavailableResource"
    UNEXPECTED_COMPONENT_SEQUENCE = 14, "unexpectedComponentSequence"
    UNEXPECTED_DATA_VALUE = 15, "unexpectedDataValue"
    UNEXPECTED_PARAMETER = 16, "unexpectedParameter"
    UNKNOWN_LEG_ID = 17, "unknownLegID"
    UNKNOWN_PDPID = 50, "unknownPDPID"
    UNKNOWN_CSID = 51, "unknownCSID"


class InapOpcode(Code):
    """Core INAP CS-1 operation codes (ETS 300 374-1 §6.4; Q.1218 §6 numbering): CAP keeps
    these values for the operations it inherited."""

    INITIAL_DP = 0, "initialDP"
    ASSIST_REQUEST_INSTRUCTIONS = 16, "assistRequestInstructions"
    ESTABLISH_TEMPORARY_CONNECTION = 17, "establishTemporaryConnection"
    DISCONNECT_FORWARD_CONNECTION = 18, "disconnectForwardConnection"
    CONNECT_TO_RESOURCE = 19, "connectToResource"
    CONNECT = 20, "connect"
    RELEASE_CALL = 22, "releaseCall"
    REQUEST_REPORT_BCSM_EVENT = 23, "requestReportBCSMEvent"
    EVENT_REPORT_BCSM = 24, "eventReportBCSM"
    REQUEST_NOTIFICATION_CHARGING_EVENT = 25, "requestNotificationChargingEvent"
    EVENT_NOTIFICATION_CHARGING = 26, "eventNotificationCharging"
    COLLECT_INFORMATION = 27, "collectInformation"
    CONTINUE = 31, "continue"
    INITIATE_CALL_ATTEMPT = 32, "initiateCallAttempt"
    RESET_TIMER = 33, "resetTimer"
    FURNISH_CHARGING_INFORMATION = 34, "furnishChargingInformation"
    APPLY_CHARGING = 35, "applyCharging"
    APPLY_CHARGING_REPORT = 36, "applyChargingReport"
    CALL_GAP = 41, "callGap"
    CALL_INFORMATION_REPORT = 44, "callInformationReport"
    CALL_INFORMATION_REQUEST = 45, "callInformationRequest"
    SEND_CHARGING_INFORMATION = 46, "sendChargingInformation"
    PLAY_ANNOUNCEMENT = 47, "playAnnouncement"
    PROMPT_AND_COLLECT_USER_INFORMATION = 48, "promptAndCollectUserInformation"
    SPECIALIZED_RESOURCE_REPORT = 49, "specializedResourceReport"
    CANCEL = 53, "cancel"
    ACTIVITY_TEST = 55, "activityTest"


class InapErrorCode(Code):
    """Core INAP CS-1 error codes (ETS 300 374-1 §6.4; 2 is not assigned in the core set)."""

    CANCELLED = 0, "cancelled"
    CANCEL_FAILED = 1, "cancelFailed"
    ETC_FAILED = 3, "eTCFailed"
    IMPROPER_CALLER_RESPONSE = 4, "improperCallerResponse"
    MISSING_CUSTOMER_RECORD = 6, "missingCustomerRecord"
    MISSING_PARAMETER = 7, "missingParameter"
    PARAMETER_OUT_OF_RANGE = 8, "parameterOutOfRange"
    REQUESTED_INFO_ERROR = 10, "requestedInfoError"
    SYSTEM_FAILURE = 11, "systemFailure"
    TASK_REFUSED = 12, "taskRefused"
    UNAVAILABLE_RESOURCE = 13, "unavailableResource"
    UNEXPECTED_COMPONENT_SEQUENCE = 14, "unexpectedComponentSequence"
    UNEXPECTED_DATA_VALUE = 15, "unexpectedDataValue"
    UNEXPECTED_PARAMETER = 16, "unexpectedParameter"


class MapOpcode(Code):
    """MAP operation codes (TS 29.002 §17, the MAP-*Operations modules), v3 names, with the
    ones only MAP v1/v2 define (e.g. 49 alertServiceCentreWithoutResult, 48
    noteSubscriberPresent); 46 is mo-ForwardSM, which v2 called forwardSM."""

    UPDATE_LOCATION = 2, "updateLocation"
    CANCEL_LOCATION = 3, "cancelLocation"
    PROVIDE_ROAMING_NUMBER = 4, "provideRoamingNumber"
    NOTE_SUBSCRIBER_DATA_MODIFIED = 5, "noteSubscriberDataModified"
    RESUME_CALL_HANDLING = 6, "resumeCallHandling"
    INSERT_SUBSCRIBER_DATA = 7, "insertSubscriberData"
    DELETE_SUBSCRIBER_DATA = 8, "deleteSubscriberData"
    SEND_PARAMETERS = 9, "sendParameters"
    REGISTER_SS = 10, "registerSS"
    ERASE_SS = 11, "eraseSS"
    ACTIVATE_SS = 12, "activateSS"
    DEACTIVATE_SS = 13, "deactivateSS"
    INTERROGATE_SS = 14, "interrogateSS"
    AUTHENTICATION_FAILURE_REPORT = 15, "authenticationFailureReport"
    REGISTER_PASSWORD = 17, "registerPassword"
    GET_PASSWORD = 18, "getPassword"
    PROCESS_UNSTRUCTURED_SS_DATA = 19, "processUnstructuredSS-Data"
    RELEASE_RESOURCES = 20, "releaseResources"
    MT_FORWARD_SM_VGCS = 21, "mt-ForwardSM-VGCS"
    SEND_ROUTING_INFO = 22, "sendRoutingInfo"
    UPDATE_GPRS_LOCATION = 23, "updateGprsLocation"
    SEND_ROUTING_INFO_FOR_GPRS = 24, "sendRoutingInfoForGprs"
    FAILURE_REPORT = 25, "failureReport"
    NOTE_MS_PRESENT_FOR_GPRS = 26, "noteMsPresentForGprs"
    PERFORM_HANDOVER = 28, "performHandover"
    SEND_END_SIGNAL = 29, "sendEndSignal"
    PERFORM_SUBSEQUENT_HANDOVER = 30, "performSubsequentHandover"
    PROCESS_ACCESS_SIGNALLING = 33, "processAccessSignalling"
    FORWARD_ACCESS_SIGNALLING = 34, "forwardAccessSignalling"
    NOTE_INTERNAL_HANDOVER = 35, "noteInternalHandover"
    CANCEL_VCSG_LOCATION = 36, "cancelVcsgLocation"
    RESET = 37, "reset"
    FORWARD_CHECK_SS_INDICATION = 38, "forwardCheckSS-Indication"
    PREPARE_GROUP_CALL = 39, "prepareGroupCall"
    SEND_GROUP_CALL_END_SIGNAL = 40, "sendGroupCallEndSignal"
    PROCESS_GROUP_CALL_SIGNALLING = 41, "processGroupCallSignalling"
    FORWARD_GROUP_CALL_SIGNALLING = 42, "forwardGroupCallSignalling"
    CHECK_IMEI = 43, "checkIMEI"
    MT_FORWARD_SM = 44, "mt-ForwardSM"
    SEND_ROUTING_INFO_FOR_SM = 45, "sendRoutingInfoForSM"
    MO_FORWARD_SM = 46, "mo-ForwardSM"
    REPORT_SM_DELIVERY_STATUS = 47, "reportSM-DeliveryStatus"
    NOTE_SUBSCRIBER_PRESENT = 48, "noteSubscriberPresent"
    ALERT_SERVICE_CENTRE_WITHOUT_RESULT = 49, "alertServiceCentreWithoutResult"
    ACTIVATE_TRACE_MODE = 50, "activateTraceMode"
    DEACTIVATE_TRACE_MODE = 51, "deactivateTraceMode"
    TRACE_SUBSCRIBER_ACTIVITY = 52, "traceSubscriberActivity"
    UPDATE_VCSG_LOCATION = 53, "updateVcsgLocation"
    BEGIN_SUBSCRIBER_ACTIVITY = 54, "beginSubscriberActivity"
    SEND_IDENTIFICATION = 55, "sendIdentification"
    SEND_AUTHENTICATION_INFO = 56, "sendAuthenticationInfo"
    RESTORE_DATA = 57, "restoreData"
    SEND_IMSI = 58, "sendIMSI"
    PROCESS_UNSTRUCTURED_SS_REQUEST = 59, "processUnstructuredSS-Request"
    UNSTRUCTURED_SS_REQUEST = 60, "unstructuredSS-Request"
    UNSTRUCTURED_SS_NOTIFY = 61, "unstructuredSS-Notify"
    ANY_TIME_SUBSCRIPTION_INTERROGATION = 62, "anyTimeSubscriptionInterrogation"
    INFORM_SERVICE_CENTRE = 63, "informServiceCentre"
    ALERT_SERVICE_CENTRE = 64, "alertServiceCentre"
    ANY_TIME_MODIFICATION = 65, "anyTimeModification"
    READY_FOR_SM = 66, "readyForSM"
    PURGE_MS = 67, "purgeMS"
    PREPARE_HANDOVER = 68, "prepareHandover"
    PREPARE_SUBSEQUENT_HANDOVER = 69, "prepareSubsequentHandover"
    PROVIDE_SUBSCRIBER_INFO = 70, "provideSubscriberInfo"
    ANY_TIME_INTERROGATION = 71, "anyTimeInterrogation"
    SS_INVOCATION_NOTIFICATION = 72, "ss-InvocationNotification"
    SET_REPORTING_STATE = 73, "setReportingState"
    STATUS_REPORT = 74, "statusReport"
    REMOTE_USER_FREE = 75, "remoteUserFree"
    REGISTER_CC_ENTRY = 76, "registerCC-Entry"
    ERASE_CC_ENTRY = 77, "eraseCC-Entry"
    PROVIDE_SUBSCRIBER_LOCATION = 83, "provideSubscriberLocation"
    SEND_GROUP_CALL_INFO = 84, "sendGroupCallInfo"
    SEND_ROUTING_INFO_FOR_LCS = 85, "sendRoutingInfoForLCS"
    SUBSCRIBER_LOCATION_REPORT = 86, "subscriberLocationReport"
    IST_ALERT = 87, "ist-Alert"
    IST_COMMAND = 88, "ist-Command"
    NOTE_MM_EVENT = 89, "noteMM-Event"


class MapErrorCode(Code):
    """MAP error codes (TS 29.002 §17, module MAP-Errors and its MAPv2 predecessor)."""

    UNKNOWN_SUBSCRIBER = 1, "unknownSubscriber"
    UNKNOWN_BASE_STATION = 2, "unknownBaseStation"
    UNKNOWN_MSC = 3, "unknownMSC"
    UNIDENTIFIED_SUBSCRIBER = 5, "unidentifiedSubscriber"
    ABSENT_SUBSCRIBER_SM = 6, "absentSubscriberSM"
    UNKNOWN_EQUIPMENT = 7, "unknownEquipment"
    ROAMING_NOT_ALLOWED = 8, "roamingNotAllowed"
    ILLEGAL_SUBSCRIBER = 9, "illegalSubscriber"
    BEARER_SERVICE_NOT_PROVISIONED = 10, "bearerServiceNotProvisioned"
    TELESERVICE_NOT_PROVISIONED = 11, "teleserviceNotProvisioned"
    ILLEGAL_EQUIPMENT = 12, "illegalEquipment"
    CALL_BARRED = 13, "callBarred"
    FORWARDING_VIOLATION = 14, "forwardingViolation"
    CUG_REJECT = 15, "cug-Reject"
    ILLEGAL_SS_OPERATION = 16, "illegalSS-Operation"
    SS_ERROR_STATUS = 17, "ss-ErrorStatus"
    SS_NOT_AVAILABLE = 18, "ss-NotAvailable"
    SS_SUBSCRIPTION_VIOLATION = 19, "ss-SubscriptionViolation"
    SS_INCOMPATIBILITY = 20, "ss-Incompatibility"
    FACILITY_NOT_SUPPORTED = 21, "facilityNotSupported"
    ONGOING_GROUP_CALL = 22, "ongoingGroupCall"
    INVALID_TARGET_BASE_STATION = 23, "invalidTargetBaseStation"
    NO_RADIO_RESOURCE_AVAILABLE = 24, "noRadioResourceAvailable"
    NO_HANDOVER_NUMBER_AVAILABLE = 25, "noHandoverNumberAvailable"
    SUBSEQUENT_HANDOVER_FAILURE = 26, "subsequentHandoverFailure"
    ABSENT_SUBSCRIBER = 27, "absentSubscriber"
    INCOMPATIBLE_TERMINAL = 28, "incompatibleTerminal"
    SHORT_TERM_DENIAL = 29, "shortTermDenial"
    LONG_TERM_DENIAL = 30, "longTermDenial"
    SUBSCRIBER_BUSY_FOR_MT_SMS = 31, "subscriberBusyForMT-SMS"
    SM_DELIVERY_FAILURE = 32, "sm-DeliveryFailure"
    MESSAGE_WAITING_LIST_FULL = 33, "messageWaitingListFull"
    SYSTEM_FAILURE = 34, "systemFailure"
    DATA_MISSING = 35, "dataMissing"
    UNEXPECTED_DATA_VALUE = 36, "unexpectedDataValue"
    PW_REGISTRATION_FAILURE = 37, "pw-RegistrationFailure"
    NEGATIVE_PW_CHECK = 38, "negativePW-Check"
    NO_ROAMING_NUMBER_AVAILABLE = 39, "noRoamingNumberAvailable"
    TRACING_BUFFER_FULL = 40, "tracingBufferFull"
    TARGET_CELL_OUTSIDE_GROUP_CALL_AREA = 42, "targetCellOutsideGroupCallArea"
    NUMBER_OF_PW_ATTEMPTS_VIOLATION = 43, "numberOfPW-AttemptsViolation"
    NUMBER_CHANGED = 44, "numberChanged"
    BUSY_SUBSCRIBER = 45, "busySubscriber"
    NO_SUBSCRIBER_REPLY = 46, "noSubscriberReply"
    FORWARDING_FAILED = 47, "forwardingFailed"
    OR_NOT_ALLOWED = 48, "or-NotAllowed"
    ATI_NOT_ALLOWED = 49, "ati-NotAllowed"
    NO_GROUP_CALL_NUMBER_AVAILABLE = 50, "noGroupCallNumberAvailable"
    RESOURCE_LIMITATION = 51, "resourceLimitation"
    UNAUTHORIZED_REQUESTING_NETWORK = 52, "unauthorizedRequestingNetwork"
    UNAUTHORIZED_LCS_CLIENT = 53, "unauthorizedLCSClient"
    POSITION_METHOD_FAILURE = 54, "positionMethodFailure"
    UNKNOWN_OR_UNREACHABLE_LCS_CLIENT = 58, "unknownOrUnreachableLCSClient"
    MM_EVENT_NOT_SUPPORTED = 59, "mm-EventNotSupported"
    ATSI_NOT_ALLOWED = 60, "atsi-NotAllowed"
    ATM_NOT_ALLOWED = 61, "atm-NotAllowed"
    INFORMATION_NOT_AVAILABLE = 62, "informationNotAvailable"
    UNKNOWN_ALPHABET = 71, "unknownAlphabet"
    USSD_BUSY = 72, "ussd-Busy"
