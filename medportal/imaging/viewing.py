"""Auditing looks at images once per viewing session, not once per request.

A viewer reading a study makes hundreds of requests (every frame, each series' metadata, every
thumbnail). Each is a look at patient data, but one audit event per request would bury the trail.
So a look is recorded once per **viewing session**: one user, one study, one channel (the login
session, or the token), until the study has not been looked at for
``MEDPORTAL_VIEWING_SESSION_SECONDS`` (the idle timeout by default). The first look writes an
Instances Accessed event (DCM 110103) naming the series it touched and the viewing session's id;
a series first opened later in the same viewing session writes one more event, naming it, with
the same id. Every other request of the viewing session writes nothing.

Opening the viewer on a study (its deep link) starts the viewing session with every series of
the study: the viewer loads them all at once. Downloading DICOM files (WADO-RS retrieve) has
viewing sessions of its own, so a download is recorded even after a look.

Which series a viewing session has recorded is kept in Redis, with its expiry. When Redis
cannot be reached, every request is audited again (more events, never fewer); an event that
cannot be written undoes its mark, so the next request tries again.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable

import redis
from django.conf import settings
from django.http import HttpRequest

from medportal.audit.models import Action, EventType
from medportal.audit.services import audit_record
from medportal.imaging.models import Series, Study

logger = logging.getLogger(__name__)

VIEW, RETRIEVE = "view", "retrieve"
_PREFIX = "medportal:viewing:"
# Marks the viewing session (SET NX) and the series it has recorded (SADD), sliding both expiries.
_MARK = """
local created = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
local id = ARGV[1]
if not created then
  id = redis.call('GET', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local new = {}
for i = 3, #ARGV do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then table.insert(new, ARGV[i]) end
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {created and 1 or 0, id, new}
"""
_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[url]


def channel_for(request: HttpRequest) -> str:
    """What ties one client's requests together: its token (set by the DICOMweb views) or its
    login session; both by a digest, never the secret itself."""
    channel = getattr(request, "dicomweb_channel", "")
    if channel:
        return channel
    session = getattr(request, "session", None)
    key = (session.session_key if session is not None else None) or ""
    return "session:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _keys(*, kind: str, user_id: int, study_uid: str, channel: str) -> tuple[str, str]:
    base = f"{_PREFIX}{kind}:{user_id}:{study_uid}:{channel}"
    return f"{base}:id", f"{base}:series"


def viewing_record(
    *,
    request: HttpRequest,
    study: Study,
    series_uids: Iterable[str],
    resource: str,
    kind: str = VIEW,
    detail: dict | None = None,
) -> None:
    """Audit a look at (``kind`` view) or a download of (``kind`` retrieve) images of ``study``,
    unless this viewing session has already recorded these series."""
    series = sorted(set(series_uids))
    id_key, series_key = _keys(
        kind=kind, user_id=request.user.pk, study_uid=study.study_uid, channel=channel_for(request)
    )
    ttl = settings.MEDPORTAL_VIEWING_SESSION_SECONDS
    client = None
    try:
        client = _redis()
        created, viewing_id, new = client.eval(_MARK, 2, id_key, series_key, uuid.uuid4().hex, ttl, *series)
        viewing_id = viewing_id.decode() if isinstance(viewing_id, bytes) else viewing_id
        new = sorted(s.decode() if isinstance(s, bytes) else s for s in new)
    except redis.RedisError as exc:
        logger.warning("viewing sessions unavailable (%s): auditing this request on its own", exc)
        client, created, viewing_id, new = None, True, "", series
    if not created and not new:
        return
    try:
        audit_record(
            event_type=EventType.INSTANCES_ACCESSED,
            action=Action.READ,
            description=_description(kind=kind, created=bool(created)),
            request=request,
            **study.audit_identifiers(),
            object_type="study",
            object_id=study.pk,
            detail={
                "viewing_session": viewing_id,
                "channel": channel_for(request).split(":", 1)[0],
                "resource": resource,
                "series": series if created else new,
                **(detail or {}),
            },
        )
    except Exception:
        if client is not None:  # not recorded: the next request must try again
            try:
                if created:
                    client.delete(id_key, series_key)
                else:
                    client.srem(series_key, *new)
            except redis.RedisError:
                logger.exception("could not undo a viewing session's mark after a failed audit event")
        raise


def _description(*, kind: str, created: bool) -> str:
    if kind == RETRIEVE:
        return (
            "DICOM files retrieved (WADO-RS)"
            if created
            else "DICOM files retrieved, another series (WADO-RS)"
        )
    return "Images viewed" if created else "Images viewed, another series"


def viewing_start_for_link(*, request: HttpRequest, study_uids: list[str]) -> None:
    """The viewer opened on studies by its link: a viewing session for each, with all its series."""
    for study in Study.objects.filter(study_uid__in=study_uids[:20]).select_related("patient"):
        series = Series.objects.filter(study=study).values_list("series_uid", flat=True)
        viewing_record(request=request, study=study, series_uids=series, resource="viewer opened")


def viewing_active(*, request: HttpRequest, study_uid: str) -> bool:
    """Whether this user, on this channel, has a viewing session of the study open (its looks
    recorded). False when Redis cannot say."""
    id_key, _ = _keys(kind=VIEW, user_id=request.user.pk, study_uid=study_uid, channel=channel_for(request))
    try:
        return bool(_redis().exists(id_key))
    except redis.RedisError:
        return False
