"""Work that falls due at a moment of a namespace's time (the DICT decision of a pending request,
the end of a validation window, and every later time rule).

A job is data (a kind, what it is about, when): kept in the namespace's state, it survives a
snapshot and can be taken by any process sharing the store. A timer only wakes the sandbox up
when the earliest job falls due; ``POST /__admin/clock/advance`` runs what its jump made due.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class DueJob:
    due_at: dt.datetime
    kind: str  # one of the sandbox's job kinds (services/due_work.py)
    subject: str  # what the job is about: a key request's key

    def as_dict(self) -> dict:
        from baas_sandbox.domain.model import timestamp

        return {"due_at": timestamp(self.due_at), "kind": self.kind, "subject": self.subject}
