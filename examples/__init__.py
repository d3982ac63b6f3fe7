"""Example bots built on statehq (run them with ``STATEHQ_BOT=examples.<name>.bot:create_bot``)."""
