"""Provenance events and the outbox that delivers them to the gateway at least once.

Modules: :mod:`.ids` (entity ids), :mod:`.events` (:class:`Event`, the batch and its
answer), :mod:`.outbox` (the SQL table and the SQLite file), :mod:`.sink` (where events go),
:mod:`.relay` (delivery), :mod:`.recorder` (a service's :class:`ServiceEvents`). Import a
name from its module; this package re-exports only the vocabulary every service speaks.

Every service reports what it did as an :class:`Event` (upload, attach, run started/finished,
import from a DOI, a query at a VO service, publish to a DOI, delete): an *activity* that
*used* some entities and *generated* others. Entity ids are ``did:<scope>:<name>``,
``run:<id>``, ``doi:10.…`` (:func:`did_id`, :func:`run_id`, :func:`doi_id`).

An event must never be lost when a service crashes, so it is not sent from the request:

- a service **with a database** writes it to its outbox table in the same transaction as the
  action (:class:`SqlOutbox` ``.add(session, event)``): both commit or neither does;
- the **datalake** (no database) records it in a small SQLite file (:class:`FileOutbox`):
  ``async with outbox.recording(event): <action>`` writes it *pending* before the action and
  *ready* after; a pending row left by a crash is settled by the relay's ``confirm`` callback
  (did the action happen? e.g. does the DID exist?);
- an :class:`OutboxRelay` task posts ready events in batches to an :class:`EventSink`
  (:class:`HttpEventSink` → ``POST {gateway}/provenance/events``, or the gateway's in-process
  sink in embedded mode) and deletes them only after the gateway acknowledged them. A relay
  killed between sending and deleting sends them again: the gateway deduplicates by event id.

Transient failures (network, 5xx, 401/403/429) are retried with capped exponential backoff for
ever; an event the gateway refuses as invalid (422) is parked as ``dead`` (logged, kept).
"""

from vre_common.provenance.events import Event, EventKind
from vre_common.provenance.ids import did_id, doi_id, run_id

__all__ = ["Event", "EventKind", "did_id", "doi_id", "run_id"]
