"""Member state: the document model, its validator, the state manager and identity."""

from .async_manager import AsyncAuditLog, AsyncStateManager
from .async_session import AsyncMemberSession
from .channel_ids import ChannelId, member_key, register_channel_type
from .manager import AuditLog, StateManager
from .model import MemberState
from .recovery import RecoveryResult
from .session import MemberSession
from .stages import EXTERNAL_STAGES, Stages
from .validator import StateValidator

__all__ = [
    "EXTERNAL_STAGES",
    "AsyncAuditLog",
    "AsyncMemberSession",
    "AsyncStateManager",
    "AuditLog",
    "ChannelId",
    "MemberSession",
    "MemberState",
    "RecoveryResult",
    "Stages",
    "StateManager",
    "StateValidator",
    "member_key",
    "register_channel_type",
]
