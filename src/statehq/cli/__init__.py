"""The ``statehq`` command line."""
