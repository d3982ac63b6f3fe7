"""statehq as aiogram's FSM storage: ``pip install 'statehq[aiogram]'``.

    from statehq.integrations.aiogram import StatehqStorage

    storage = StatehqStorage.from_url("redis://localhost:6379/0")
    dp = Dispatcher(storage=storage, events_isolation=storage.create_isolation())

:class:`StatehqStorage` implements aiogram 3's ``BaseStorage`` (``update_data`` is one
atomic server-side merge); :class:`StatehqEventIsolation` its ``BaseEventIsolation`` on
statehq's fenced per-session lease; :class:`KeyMapper` says which statehq session
(``telegram:<user_id>`` for a private chat) an aiogram ``StorageKey`` is.
"""

from .isolation import StatehqEventIsolation
from .keys import KeyMapper
from .storage import StatehqStorage

__all__ = ["KeyMapper", "StatehqEventIsolation", "StatehqStorage"]
