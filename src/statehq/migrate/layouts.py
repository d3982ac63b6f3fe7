"""The seed project's three key layouts, and which legacy session a source key belongs to.

=========================  ==============================================================
layout                     keys (each possibly behind a Django cache prefix ``[P]:<n>:``)
=========================  ==============================================================
``channel-document``       ``channel:<wa_id>``: one JSON document (channel, auth, dashboard,
                           active_account_id, component_data)
``cache-fields``           ``<mobile>`` (a state object) and ``<mobile>_stage``,
                           ``<mobile>_option``, ``<mobile>_direction``, ``<mobile>_jwt_token``
``user-state``             ``user_state:<id>``: one JSON document (stage, option, jwt_token,
                           profile, current_account, flow_data)
=========================  ==============================================================

Django's cache builds its keys as ``KEY_PREFIX:VERSION:key`` (``:1:263771234567_stage``
with the default empty prefix), so a leading ``<anything>:<digits>:`` is recognised and
kept as part of the session's identity: two cache versions of one number are two
sessions. Keys of no layout are not legacy sessions and are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHANNEL_DOCUMENT = "channel-document"
CACHE_FIELDS = "cache-fields"
USER_STATE = "user-state"
LAYOUTS = (CHANNEL_DOCUMENT, CACHE_FIELDS, USER_STATE)

DOCUMENT = "document"
"""The part name of the single key of a ``channel-document`` or ``user-state`` session."""
STATE = "state"
"""The part name of the bare ``<mobile>`` key of a ``cache-fields`` session."""
FIELD_PARTS = ("stage", "option", "direction", "jwt_token")
"""The ``<mobile>_<part>`` keys of a ``cache-fields`` session."""

# Braces never appear in a legacy key but always in statehq's own ({member} hash tags),
# so a statehq store sharing the server is never mistaken for legacy data.
_CACHE = r"(?P<cache>[^{}]*:\d+:)?"
_PATTERNS = (
    (CHANNEL_DOCUMENT, re.compile(_CACHE + r"channel:(?P<id>[^:{}\s]+)")),
    (USER_STATE, re.compile(_CACHE + r"user_state:(?P<id>[^:{}\s]+)")),
    (
        CACHE_FIELDS,
        re.compile(_CACHE + r"(?P<id>\+?\d{5,20})(?:_(?P<part>" + "|".join(FIELD_PARTS) + r"))?"),
    ),
)


@dataclass(frozen=True)
class LegacyKey:
    """A source key read as one part of a legacy session."""

    key: str
    layout: str
    identifier: str
    """The id inside the key: a WhatsApp number, or ``user_state``'s user id."""
    cache_prefix: str
    """The Django cache prefix in front of the key (``":1:"``), or ``""``."""
    part: str
    """:data:`DOCUMENT`, :data:`STATE` or one of :data:`FIELD_PARTS`."""

    @property
    def session(self) -> tuple[str, str, str]:
        """What every part of one legacy session shares."""
        return (self.layout, self.cache_prefix, self.identifier)


def classify(key: str) -> LegacyKey | None:
    """The legacy session part ``key`` is, or None for a key of no known layout."""
    for layout, pattern in _PATTERNS:
        found = pattern.fullmatch(key)
        if found is None:
            continue
        part = found.group("part") if layout == CACHE_FIELDS else None
        return LegacyKey(
            key=key,
            layout=layout,
            identifier=found.group("id"),
            cache_prefix=found.group("cache") or "",
            part=part or (STATE if layout == CACHE_FIELDS else DOCUMENT),
        )
    return None
