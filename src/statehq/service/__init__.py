"""The HTTP service: the WhatsApp webhook, the inbox workers, health, metrics and admin."""
