"""The reference bot: a WhatsApp front end to a community credit ledger (credex)."""
