"""排查 screening rounds and the register (登记造册), read in this order:

- ``rules``: the events of a round (``round.scheduled``, ``round.reported``) and of a
  register entry (``entry.recorded``, ``entry.updated``, ``entry.resolved``), their clean
  functions, folds and rows;
- ``commands``: schedule, report, record, update, resolve, and the reads;
- ``book``: the register as an Excel workbook, exported and imported.

A round is scheduled by an area, a town or the city for the units below it that it
names, each of which gets it as a task with its deadline and reports it done; the
scheduler sees who has not. The register is a living table per unit: an entry stays
from round to round, each check recorded with its round, until it is resolved.
"""

from node.rounds import book
from node.rounds.commands import (
    below,
    get,
    get_entry,
    history,
    listing,
    people_of,
    record,
    register,
    report,
    resolve,
    schedule,
    update,
)
from node.rounds.rules import (
    ENTRY_ID,
    ENTRY_KINDS,
    ENTRY_STATES,
    RISKS,
    ROUND_ID,
    SCHEDULING_TIERS,
    clean_record,
    clean_schedule,
    clean_update,
)

__all__ = ["ENTRY_ID", "ENTRY_KINDS", "ENTRY_STATES", "RISKS", "ROUND_ID", "SCHEDULING_TIERS",
           "below", "book", "clean_record", "clean_schedule", "clean_update", "get",
           "get_entry", "history", "listing", "people_of", "record", "register", "report",
           "resolve", "schedule", "update"]
