"""A salon's appointment bot: book, list and cancel appointments over WhatsApp.

STATEHQ_BOT=examples.appointments.bot:create_bot statehq chat --as 263771234567
"""
