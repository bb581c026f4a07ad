"""The admission waitlist on the database, one import for routers, the CLI and tests (``from geo.admission import
waitlist as wl``). The code lives by job in:

- ``common``: time of a write, public ids, the per-centre advisory lock, centre look-up;
- ``chain``: the per-centre hash chain (pure) and its store (``append_event``, heads, proofs);
- ``states``: the transition tables of entries (with their offers and places) and of claims, and the one
  ``transition`` every change of state goes through (checked, applied, logged on the chain);
- ``children``: children and their priority claims;
- ``queue``: ranked queues, the public and staff views, a parent's rank check;
- ``lifecycle``: applications, withdrawal, keeping, renewal, year-end drop, corrections, notices;
- ``offers``: free places, offers and their answers, expiry and lapses;
- ``intake``: the March intake round;
- ``events``: what the log says of families (per-centre pseudonyms, salted category commitments, priority and
  rules events) under the private key; ``replay`` (pure): the log folded into entries, offers and ranked queues;
  ``projection``: the tables compared with the replay (``dolbom waitlist verify``) and rebuilt from it.

Every function takes a connection first and writes inside the caller's transaction. The chain holds no names or
birth dates: entries appear by random public ids, children by a pseudonym per centre, categories only committed,
and every event carries a random nonce.
"""

from __future__ import annotations

from geo.admission.chain import (
    append_event,
    centres_with_chains,
    chain_rows,
    daily_heads,
    inclusion_proofs,
    verify_centre,
)
from geo.admission.children import child_view, register_child, set_evidence
from geo.admission.common import ACTIVE, LOCK_NAMESPACE, SEOUL, facility_by_code
from geo.admission.intake import intake_round
from geo.admission.lifecycle import (
    apply,
    correct,
    drop_unrenewed,
    entry_view,
    keep_entries,
    notices,
    renew,
    withdraw,
)
from geo.admission.offers import (
    accept,
    centre_offers,
    decline,
    expire_offers,
    free_places,
    offer_next,
    offer_view,
)
from geo.admission.queue import (
    QueueEntry,
    QueueKey,
    age_class_in,
    my_ranks,
    public_queue,
    queue,
    queue_sizes,
    queues,
    record_ranks,
    staff_queue,
)

__all__ = [
    "ACTIVE", "LOCK_NAMESPACE", "SEOUL", "QueueEntry", "QueueKey", "accept", "age_class_in", "append_event",
    "apply", "centre_offers", "centres_with_chains", "chain_rows", "child_view", "correct", "daily_heads", "decline",
    "drop_unrenewed", "entry_view", "expire_offers", "facility_by_code", "free_places", "inclusion_proofs",
    "intake_round", "keep_entries", "my_ranks", "notices", "offer_next", "offer_view", "public_queue", "queue",
    "queue_sizes", "queues", "record_ranks", "register_child", "renew", "set_evidence", "staff_queue", "verify_centre",
    "withdraw",
]
