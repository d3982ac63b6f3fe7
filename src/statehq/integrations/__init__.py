"""Bring statehq to the frameworks bots are already written in.

Each integration is a subpackage that imports its framework, an optional extra
(``pip install 'statehq[aiogram]'``); nothing else in statehq imports them.
"""
