"""Every error statehq raises, in one tree.

```
StateError                      anything statehq refuses or cannot do
├── ConfigError                 a setting (environment variable or argument) is invalid
├── InvalidInput                the caller passed something the store will not write
│   ├── InvalidMemberId         empty, too long, or characters that break key routing
│   ├── InvalidMessageId        empty, too long, or control characters
│   ├── InvalidPatch            not a JSON object, not JSON-encodable, or touches store fields
│   ├── DocumentTooLarge        the resulting document would exceed the size limit
│   ├── StateValidationError    the resulting document breaks the state model's rules
│   └── TransitionRefused       a stage change the stage machine does not declare
├── VersionConflict             expected_version did not match the stored version
│   └── MutateTimeout           mutate/rollback kept conflicting until its deadline
├── VersionNotFound             rollback to a version the history no longer holds
├── LeaseError
│   ├── LeaseBusy               another holder has the member's lease
│   └── LeaseLost               the lease expired or was taken over; the write was refused
├── CorruptState                a stored document could not be decoded
├── SessionMoved                the session was bound to a member and lives under its key
├── SessionEnded                the session expired or was removed while it was being used
├── NoSession                   no session, live or remembered, to act on (reset, rollback)
├── NoLiveSession               no live session to show or roll back (it expired, or never was)
├── IdentityError               a channel is already bound elsewhere, or is not bound
└── StoreUnavailable            the Redis/Valkey server cannot be reached or refused the command
    ├── StoreFull               the server hit its memory limit; nothing was evicted or written
    └── StoreRefused            the server answered with an error (a script failed, a bad argument)
```

Each leaf carries the context that explains it and its message says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class StateError(Exception):
    """Base class of every error raised by statehq."""


class ConfigError(StateError):
    """A configuration value is missing or malformed."""


class InvalidInput(StateError):
    """The caller passed a value the store refuses; nothing was written."""


class InvalidMemberId(InvalidInput):
    """A member id the store cannot key safely."""

    def __init__(self, member_id: object, reason: str) -> None:
        self.member_id = member_id
        self.reason = reason
        super().__init__(f"invalid member id {member_id!r:.80}: {reason}")


class InvalidMessageId(InvalidInput):
    """An inbound message id the store cannot use as a dedup mark."""

    def __init__(self, message_id: object, reason: str) -> None:
        self.message_id = message_id
        self.reason = reason
        super().__init__(f"invalid message id {message_id!r:.80}: {reason}")


class InvalidPatch(InvalidInput):
    """A patch or replacement document the store will not apply."""

    def __init__(self, reason: str, *, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"invalid patch{where}: {reason}")


class DocumentTooLarge(InvalidInput):
    """The write would make the member's document larger than the configured limit."""

    def __init__(self, member_id: str, size: int, limit: int) -> None:
        self.member_id = member_id
        self.size = size
        self.limit = limit
        super().__init__(
            f"document for member {member_id!r} would be {size} bytes, over the limit of "
            f"{limit} bytes; nothing was written (raise STATEHQ_MAX_DOCUMENT_BYTES or store "
            f"less in the session)"
        )


class VersionConflict(StateError):
    """A compare-and-set write found a different version than the caller expected."""

    def __init__(self, member_id: str, expected_version: int, actual_version: int) -> None:
        self.member_id = member_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"version conflict for member {member_id!r}: expected version {expected_version}, "
            f"found {actual_version}; re-read the state and apply the change again"
        )


class MutateTimeout(VersionConflict):
    """A read-modify-write kept losing races until its deadline passed."""

    def __init__(
        self,
        member_id: str,
        expected_version: int,
        actual_version: int,
        *,
        attempts: int,
        deadline: float,
    ) -> None:
        super().__init__(member_id, expected_version, actual_version)
        self.attempts = attempts
        self.deadline = deadline
        self.args = (
            f"gave up updating member {member_id!r} after {attempts} attempts in {deadline:g} s: "
            f"every attempt found the state changed by another writer (last expected version "
            f"{expected_version}, found {actual_version}); nothing was written by this call. "
            f"Use update() with a merge patch when the change does not depend on what was read, "
            f"or raise the deadline",
        )


class VersionNotFound(StateError):
    """Rollback asked for a version that the history ring no longer holds."""

    def __init__(self, member_id: str, version: int, available: list[int]) -> None:
        self.member_id = member_id
        self.version = version
        self.available = available
        held = ", ".join(map(str, available)) if available else "none"
        super().__init__(
            f"member {member_id!r} has no version {version} in its history (held: {held})"
        )


class LeaseError(StateError):
    """Base class of lease failures."""


class LeaseBusy(LeaseError):
    """Another worker holds the member's lease."""

    def __init__(self, member_id: str, retry_after: float) -> None:
        self.member_id = member_id
        self.retry_after = retry_after
        super().__init__(
            f"the lease on member {member_id!r} is held by another worker; "
            f"it expires in {retry_after:.3f} s unless renewed"
        )


class LeaseLost(LeaseError):
    """A write carried a fencing token that is no longer current; it was refused."""

    def __init__(self, member_id: str, token: int, current: int | None) -> None:
        self.member_id = member_id
        self.token = token
        self.current = current
        now = "no lease is held" if current is None else f"the current token is {current}"
        super().__init__(
            f"write for member {member_id!r} refused: its lease (token {token}) expired or was "
            f"taken over and {now}; nothing was written. Stop processing this member and let "
            f"the current holder continue"
        )


class CorruptState(StateError):
    """The stored document for a member could not be decoded."""

    def __init__(self, member_id: str, detail: str) -> None:
        self.member_id = member_id
        self.detail = detail
        super().__init__(
            f"stored state for member {member_id!r} is corrupt ({detail}); "
            f"roll back to a version from history or reset the member"
        )


class StoreUnavailable(StateError):
    """The Redis/Valkey server could not be reached or failed the command."""


class StoreFull(StoreUnavailable):
    """The server reached its memory limit; the write was refused and nothing was evicted."""


class StoreRefused(StoreUnavailable):
    """The server answered the command with an error (a script failed, an argument was bad).

    Unlike its parent, retrying the same call will not help: the server is up and said no.
    """


class SessionMoved(StateError):
    """The session was bound to a member; it now lives under ``target``. Re-resolve and retry."""

    def __init__(self, session_key: str, target: str) -> None:
        self.session_key = session_key
        self.target = target
        super().__init__(f"session {session_key!r} moved to {target!r}; nothing was written")


class SessionEnded(StateError):
    """The session disappeared (expired, reset, deleted) while a handle was using it."""

    def __init__(self, session_key: str) -> None:
        self.session_key = session_key
        super().__init__(
            f"session {session_key!r} ended (expired or was removed) while it was in use; "
            f"nothing was written. Open it again to start a new session"
        )


class NoSession(StateError):
    """There is no session, live or remembered, to act on; nothing was written."""

    def __init__(self, session_key: str, action: str) -> None:
        self.session_key = session_key
        super().__init__(
            f"no session for {session_key!r} (none live, none in history): nothing to {action}. "
            f"Check the member id or phone number"
        )


class NoLiveSession(StateError):
    """``who`` has no live session to show or roll back; ``status`` says expired or none."""

    def __init__(self, who: str, status: str, then: str = "") -> None:
        self.who = who
        self.status = status
        super().__init__(f"no live session for {who} ({status}){then}")


class IdentityError(StateError):
    """A channel identity cannot be bound or unbound as asked; nothing was changed."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: where in the document, and what is wrong in plain words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class StateValidationError(InvalidInput):
    """A write would leave the state breaking the model's rules; nothing was written.

    ``violations`` lists every problem found in the whole resulting document.
    """

    def __init__(self, session_key: str, violations: list[Violation]) -> None:
        self.session_key = session_key
        self.violations = violations
        listed = "\n".join(f"  - {v}" for v in violations)
        count = "1 problem" if len(violations) == 1 else f"{len(violations)} problems"
        super().__init__(
            f"state write for {session_key!r} refused, nothing was written ({count}):\n{listed}"
        )


class TransitionRefused(InvalidInput):
    """A stage change that the declared stage machine does not allow; nothing was written."""

    def __init__(self, session_key: str, source: str, target: str, allowed: list[str]) -> None:
        self.session_key = session_key
        self.source = source
        self.target = target
        self.allowed = allowed
        options = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"session {session_key!r} cannot go from stage {source} to {target}: that "
            f"transition is not declared (from {source} the declared stages are: {options})"
        )
