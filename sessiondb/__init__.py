"""Host side of the per-session DB protocol (inbound.db / outbound.db); see docs/session-protocol.md."""

from sessiondb.clock import parse_db_time, to_db_time, utc_now_text
from sessiondb.delivery import due_outbound, record_delivered, record_failed
from sessiondb.errors import (
    AttachmentError,
    InvalidInput,
    ProtocolViolation,
    SessionDbError,
    SessionFolderMissing,
    UnknownMessage,
)
from sessiondb.inbound import (
    cancel_task,
    create_session_folder,
    insert_message,
    pause_task,
    resume_task,
    write_destinations,
    write_routing,
)
from sessiondb.lifecycle import (
    claimed_messages,
    count_due,
    finished_recurring,
    reset_for_retry,
    schedule_next_recurrence,
    sync_processing_acks,
)
from sessiondb.liveness import heartbeat_mtime, remove_heartbeat
from sessiondb.models import (
    Claim,
    DestinationRow,
    InboundMessage,
    Occurrence,
    OutboundMessage,
    RecurringTask,
    RetryOutcome,
    destination_row,
)
from sessiondb.paths import heartbeat_path, inbound_path, inbox_dir, outbound_path, outbox_dir, session_dir

__all__ = [
    "AttachmentError",
    "Claim",
    "DestinationRow",
    "InboundMessage",
    "InvalidInput",
    "Occurrence",
    "OutboundMessage",
    "ProtocolViolation",
    "RecurringTask",
    "RetryOutcome",
    "SessionDbError",
    "SessionFolderMissing",
    "UnknownMessage",
    "cancel_task",
    "claimed_messages",
    "count_due",
    "create_session_folder",
    "destination_row",
    "due_outbound",
    "finished_recurring",
    "heartbeat_mtime",
    "heartbeat_path",
    "inbound_path",
    "inbox_dir",
    "insert_message",
    "outbound_path",
    "outbox_dir",
    "parse_db_time",
    "pause_task",
    "record_delivered",
    "record_failed",
    "remove_heartbeat",
    "reset_for_retry",
    "resume_task",
    "schedule_next_recurrence",
    "session_dir",
    "sync_processing_acks",
    "to_db_time",
    "utc_now_text",
    "write_destinations",
    "write_routing",
]
