"""The flow engine: headquarters routes each message; flows are steps of four kinds.

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
from .inbound import GREETINGS, Inbound, is_cancel, is_greeting, normalize, stamp, unstamp
from .loading import bot_stages, build_engine, load_factory, open_bot
from .messages import Buttons, Message, MessageLimitError, Option, OptionList, Text
from .simple import NoLogin, SimpleBot
from .turn import Turn

__all__ = [
    "GREETINGS",
    "Abandon",
    "Answer",
    "Api",
    "Bot",
    "Buttons",
    "Confirm",
    "Display",
    "Finish",
    "Flow",
    "Goto",
    "Headquarters",
    "Inbound",
    "Input",
    "Invalid",
    "Message",
    "MessageLimitError",
    "NoLogin",
    "Option",
    "OptionList",
    "Outcome",
    "Retry",
    "SimpleBot",
    "Step",
    "Text",
    "Turn",
    "Wait",
    "bot_stages",
    "build_engine",
    "is_cancel",
    "is_greeting",
    "load_factory",
    "match_option",
    "normalize",
    "open_bot",
    "stamp",
    "unstamp",
]
