"""The business numbers one deployment answers: the default and the numbers file's.

The default number (``WHATSAPP_PHONE_NUMBER_ID``, ``WHATSAPP_ACCESS_TOKEN``,
``WHATSAPP_APP_SECRET``) keeps the identities it always had, ``whatsapp:<wa_id>``. A
member writing to another number is another conversation, ``whatsapp:<wa_id>@<phone
number id>`` (see :attr:`statehq.state.ChannelId.via`): its own session, bot and
replies, until a bot binds both identities to one member.

Which numbers a request may carry updates for is decided by its signature: a request
signed with an app secret admits the numbers configured with that secret, and only
those, so one Meta app cannot speak for another app's numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ...config import WhatsAppSettings
from ...config_numbers import VARIABLE, NumbersFile, load_numbers
from ...errors import ConfigError
from ...flows.templates import Template
from ...state import ChannelId
from .webhook import SignatureError, verify_signature

DEFAULT_LABEL = "default"
"""The metrics label of the default number when WHATSAPP_PHONE_NUMBER_ID is unset."""


@dataclass(frozen=True)
class Line:
    """One business number as the channel uses it.

    ``via`` is what its members' identities carry after ``@`` (None for the default
    number); ``phone_number_id`` is None only for a default number left unconfigured.
    """

    phone_number_id: str | None
    access_token: str = field(repr=False)
    app_secret: str | None = field(repr=False)
    via: str | None
    reengage: Template | None = None

    @property
    def label(self) -> str:
        """The number as metrics and the audit trail name it: its phone number id."""
        return self.phone_number_id or DEFAULT_LABEL


class Lines:
    """The default number and the numbers file's, by the ``via`` of their identities."""

    def __init__(self, settings: WhatsAppSettings, numbers: NumbersFile | None = None) -> None:
        if numbers is None:
            numbers = load_numbers(settings.numbers) if settings.numbers else NumbersFile()
        default_id = settings.phone_number_id
        if default_id is not None and default_id in numbers.ids():
            raise ConfigError(
                f"{VARIABLE}: phone_number_id {default_id} is WHATSAPP_PHONE_NUMBER_ID, the "
                f"default number: configure it once (remove it from the file, or unset "
                f"the variable)"
            )
        self.default = Line(
            default_id, settings.access_token or "", settings.app_secret, None, numbers.reengage
        )
        self.extra = {
            n.phone_number_id: Line(
                n.phone_number_id,
                n.access_token,
                n.app_secret or settings.app_secret,
                n.phone_number_id,
                n.reengage or numbers.reengage,
            )
            for n in numbers.numbers
        }

    def __iter__(self) -> Iterator[Line]:
        return iter((self.default, *self.extra.values()))

    @property
    def several(self) -> bool:
        """Whether a numbers file adds numbers to the default."""
        return bool(self.extra)

    def of(self, channel: ChannelId | str) -> Line:
        """The number a conversation goes through (the default for a bare identity)."""
        channel = ChannelId.parse(channel) if isinstance(channel, str) else channel
        via = channel.via
        return self.extra.get(via, self.default) if via is not None else self.default

    def of_via(self, via: object) -> Line:
        """The number a rendered body names to be sent from (the default for none)."""
        return self.extra.get(via, self.default) if isinstance(via, str) else self.default

    def admitted(self, body: bytes, header: str | None) -> dict[str, str | None]:
        """The numbers a request signed with ``header`` may carry updates for, each with
        the ``via`` its senders' identities get; :class:`SignatureError` when no secret
        configured signs it.

        Each distinct secret is tried (a deployment has a few): the one that matches
        admits its numbers. The default number without a phone number id admits none
        here, since with several numbers an update must name one of them.
        """
        secrets = {line.app_secret for line in self if line.app_secret}
        refused: SignatureError | None = None
        for secret in sorted(secrets):
            try:
                verify_signature(body, header, secret)
            except SignatureError as wrong:
                if wrong.status == 401:  # no signature at all: no other secret helps
                    raise
                refused = wrong
                continue
            return {
                line.phone_number_id: line.via
                for line in self
                if line.phone_number_id is not None and line.app_secret == secret
            }
        raise refused or SignatureError("no app secret is configured", 403)
