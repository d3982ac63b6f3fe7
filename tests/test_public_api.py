"""The public surface is a decision: renaming or dropping a name must fail this test."""

import statehq


def test_public_names_are_pinned() -> None:
    assert sorted(statehq.__all__) == sorted(
        [
            "AsyncMemberSession",
            "AsyncStateManager",
            "AsyncStateStore",
            "AuditEntry",
            "AuditEvent",
            "AuditLog",
            "BotSettings",
            "ChannelId",
            "ConfigError",
            "CorruptState",
            "DEFAULT_PRESERVE",
            "DocumentTooLarge",
            "HistoryEntry",
            "IdentityError",
            "InvalidInput",
            "InvalidMemberId",
            "InvalidMessageId",
            "InvalidPatch",
            "Lease",
            "LeaseBusy",
            "LeaseError",
            "LeaseLost",
            "MemberSession",
            "MutateTimeout",
            "RecoveryResult",
            "NoLiveSession",
            "NoSession",
            "SessionEnded",
            "SessionMoved",
            "SessionStatus",
            "ServiceSettings",
            "Settings",
            "Snapshot",
            "Stages",
            "StateError",
            "StateManager",
            "StateStore",
            "StateValidationError",
            "StateValidator",
            "StoreFull",
            "StoreRefused",
            "StoreSettings",
            "StoreUnavailable",
            "TransitionRefused",
            "VersionConflict",
            "VersionNotFound",
            "Violation",
            "WhatsAppSettings",
            "__version__",
        ]
    )
    for name in statehq.__all__:
        assert getattr(statehq, name) is not None


def test_every_error_is_a_state_error() -> None:
    errors = [getattr(statehq, n) for n in statehq.__all__ if isinstance(getattr(statehq, n), type)]
    for error in (e for e in errors if issubclass(e, Exception)):
        assert issubclass(error, statehq.StateError), error


def test_public_objects_are_documented() -> None:
    for name in statehq.__all__:
        obj = getattr(statehq, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
            for attr, member in vars(obj).items():
                if callable(member) and not attr.startswith("_"):
                    assert member.__doc__, f"{name}.{attr}"


def test_the_flow_engine_names_are_pinned() -> None:
    from statehq import flows

    assert sorted(flows.__all__) == sorted(
        [
            "GREETINGS",
            "MEDIA_KINDS",
            "Abandon",
            "Answer",
            "Api",
            "Bot",
            "Buttons",
            "Confirm",
            "Display",
            "Field",
            "Finish",
            "Flow",
            "Form",
            "FormMessage",
            "FormReply",
            "Goto",
            "Headquarters",
            "Inbound",
            "Input",
            "Invalid",
            "Media",
            "MediaInput",
            "Message",
            "MessageLimitError",
            "NoLogin",
            "Option",
            "OptionList",
            "Outcome",
            "PayloadError",
            "Retry",
            "SimpleBot",
            "Step",
            "Template",
            "Text",
            "Turn",
            "Wait",
            "WhatsAppFlow",
            "bot_stages",
            "build_engine",
            "inbound_from",
            "is_cancel",
            "is_greeting",
            "load_factory",
            "match_option",
            "normalize",
            "open_bot",
            "stamp",
            "unstamp",
        ]
    )
