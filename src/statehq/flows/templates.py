"""Message templates: what reaches a WhatsApp member after the 24-hour window has closed.

WhatsApp lets a business write freely only within 24 hours of the member's last
message (the customer-service window); after that only a template registered with Meta
(a name, a language, and values for its ``{{1}}``, ``{{2}}``... placeholders) is
delivered, and any other message fails with error 131047. A bot gives a reply its
template with ``template=``::

    Text(
        "Tendai accepted your credex of 10 USD.",
        template=Template("credex_accepted", "en_US", ("Tendai", "10 USD")),
    )

The WhatsApp channel sends the text while the window is open and the template once it
has closed; every other channel shows the text. A number's re-engagement template (the
numbers file's ``reengage``) is what the service sends when Meta reports 131047 for a
reply it had already sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

NAME_LIMIT = 512
PARAMETER_LIMIT = 1024
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2,4})?")
_REFUSED_IN_PARAMETER = re.compile(r"\s*[\n\r\t]\s*| {5,}")
"""What Meta refuses in a body parameter (#100: "Param text cannot have new-line/tab
characters or more than 4 consecutive spaces")."""


@dataclass(frozen=True)
class Template:
    """A template registered with Meta: its ``name``, ``language`` code and the values of
    its body's placeholders, in order (``parameters``).

    Checked when built, so a misspelt language or an empty value fails in the bot's
    tests, not at Meta (which answers 132000-132012 for a template it cannot fill).
    """

    name: str
    language: str = "en_US"
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidInput(
                f"a template name is 1-{NAME_LIMIT} lowercase letters, digits or _ (as Meta "
                f"registers it), got {self.name!r:.80}"
            )
        if not isinstance(self.language, str) or not _LANGUAGE.fullmatch(self.language):
            raise InvalidInput(
                f"a template language is a code such as en, en_US or pt_BR, "
                f"got {self.language!r:.40}"
            )
        if not isinstance(self.parameters, list | tuple) or not all(
            isinstance(p, str) and p.strip() and len(p) <= PARAMETER_LIMIT for p in self.parameters
        ):
            raise InvalidInput(
                f"template {self.name!r}: parameters are a sequence of non-empty texts of at "
                f"most {PARAMETER_LIMIT} characters"
            )
        object.__setattr__(self, "parameters", tuple(self.parameters))

    def graph(self) -> dict[str, Any]:
        """The Graph API's ``template`` object for this template."""
        body: dict[str, Any] = {"name": self.name, "language": {"code": self.language}}
        if self.parameters:
            # A value is often the member's or the bot's own text (a name, a note): its
            # line breaks, tabs and long runs of spaces become one space, rather than
            # Meta refusing the one message that reaches a member after the window.
            values = [
                {"type": "text", "text": _REFUSED_IN_PARAMETER.sub(" ", value)}
                for value in self.parameters
            ]
            body["components"] = [{"type": "body", "parameters": values}]
        return body
