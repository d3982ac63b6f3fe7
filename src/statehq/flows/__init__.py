"""The flow engine: headquarters routes each message; flows are steps of four kinds.

Beside them, a :class:`Form` collects several answers in one step (a WhatsApp Flow
where the channel shows one, plain questions elsewhere) and a :class:`MediaInput`
takes a file; see :mod:`statehq.flows.forms` and :mod:`statehq.flows.media`.

Channel-neutral: flows answer with :mod:`~statehq.flows.messages` that each channel
renders. Nothing here knows about any particular bot: a bot is loaded by import path
(``STATEHQ_BOT``, see :mod:`statehq.flows.loading`).
"""

from .components import (
    Abandon,
    Answer,
    Api,
    Confirm,
    Display,
    Finish,
    Flow,
    Goto,
    Input,
    Invalid,
    Outcome,
    Retry,
    Step,
    Wait,
    match_option,
)
from .engine import Bot, Headquarters
from .forms import Field, Form, WhatsAppFlow
from .inbound import (
    GREETINGS,
    Inbound,
    inbound_from,
    is_cancel,
    is_greeting,
    normalize,
    stamp,
    unstamp,
)
from .loading import bot_stages, build_engine, load_factory, open_bot
from .media import MediaInput
from .messages import (
    Buttons,
    FormMessage,
    Message,
    MessageLimitError,
    Option,
    OptionList,
    Text,
)
from .payloads import MEDIA_KINDS, FormReply, Media, PayloadError
from .simple import NoLogin, SimpleBot
from .templates import Template
from .turn import Turn

__all__ = [
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
