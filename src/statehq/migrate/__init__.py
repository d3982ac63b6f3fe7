"""Importing sessions the seed project left in Redis, in its older layouts.

The legacy database is read by SCAN (:mod:`.source`), each key classified by layout
(:mod:`.layouts`) and each value decoded without trusting it (:mod:`.values`); each
legacy session becomes a statehq document (:mod:`.mapping`, :mod:`.pieces`) written
through the store's session import, keeping its remaining TTL (:mod:`.importer`).
``statehq migrate`` (:mod:`statehq.cli.migrate`) is the command.
"""
