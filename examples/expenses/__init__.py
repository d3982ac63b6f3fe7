"""An expense-claim bot: a form (a WhatsApp Flow where there is one), then a photo of the receipt.

STATEHQ_BOT=examples.expenses.bot:create_bot statehq chat --as 263771234567
"""
