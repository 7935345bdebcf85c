"""The worker's side of draft leases: while this process holds a draft, a daemon thread renews
its lease every third of MEDPORTAL_DRAFT_LEASE_SECONDS, also while the draft waits for the model
or prepares its image (the text saves renew it too). The process dies: renewals stop, the lease
runs out, and the sweep sends the draft to another worker (medportal.reporting.services.leases).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection

from medportal.reporting.services import leases
from medportal.reporting.services.drafts import DraftClaim

logger = logging.getLogger(__name__)

_held: set[DraftClaim] = set()
_lock = threading.Lock()
_renewer: threading.Thread | None = None


def hold(claim: DraftClaim) -> None:
    global _renewer
    with _lock:
        _held.add(claim)
        if _renewer is None or not _renewer.is_alive():
            _renewer = threading.Thread(target=_renew_forever, name="draft-lease-renewer", daemon=True)
            _renewer.start()


def release(claim: DraftClaim) -> None:
    with _lock:
        _held.discard(claim)


def _renew_forever() -> None:
    renewed = time.monotonic()
    while True:
        time.sleep(0.5)
        if time.monotonic() - renewed < settings.MEDPORTAL_DRAFT_LEASE_SECONDS / 3:
            continue
        renewed = time.monotonic()
        with _lock:
            claims = list(_held)
        if not claims:
            continue
        try:
            leases.draft_leases_renew(claims=claims)
        except Exception:  # the database is away for a moment: try again next time
            logger.exception("could not renew the leases of %d drafts", len(claims))
        finally:
            connection.close()  # one short connection per renewal, none held in between
