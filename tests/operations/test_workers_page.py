"""The Workers page (admins only): its table, its htmx refresh, its audit event, its link."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from medportal.access.roles import Role
from medportal.audit.models import AuditEvent, EventType
from medportal.operations.presence import WorkerReport
from medportal.operations.services import worker_presence_clear, worker_presence_record
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    return make_user("ada", Role.ADMIN)


@pytest.fixture
def gpu_worker():
    """A worker's report as a GPU worker writes it."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    report = WorkerReport(
        name=f"celery@gpu-{uuid.uuid4().hex[:8]}", host="gpu-host-7", pid=77, pool="thread",
        queues=[f"gpu-27b-{uuid.uuid4().hex[:8]}"], model="google/medgemma-27b-it", engine="transformers",
        state="ready", capacity=4, active=3, device="cuda (NVIDIA H100 80GB HBM3)", memory_kind="gpu",
        memory_used_bytes=60 * 2**30, memory_total_bytes=80 * 2**30, device_used_bytes=62 * 2**30,
    )  # fmt: skip
    worker_presence_record(client=client, report=report, ttl_s=30)
    yield report
    worker_presence_clear(client=client, name=report.name)
    client.close()


def test_an_admin_sees_each_live_worker_with_its_model_device_memory_and_load(client, admin, gpu_worker):
    client.force_login(admin)
    page = client.get(reverse("workers-status")).content.decode()
    row = page.split(f'data-worker="{gpu_worker.name}"', 1)[1].split("</tr>", 1)[0]
    assert "gpu-host-7" in row
    assert gpu_worker.queues[0] in row
    assert "google/medgemma-27b-it" in row
    assert "cuda (NVIDIA H100 80GB HBM3)" in row
    assert "GPU 60.0\xa0GB of 80.0\xa0GB" in row
    assert "3 / 4" in row and "(75 %)" in row
    assert " ago" in row
    # Its queue is listed, served by it.
    queue_row = page.split(f'data-queue="{gpu_worker.queues[0]}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="served">1</td>' in queue_row


def test_the_page_refreshes_its_table_alone_and_only_opening_it_is_audited(client, admin, gpu_worker):
    client.force_login(admin)
    before = AuditEvent.objects.count()
    page = client.get(reverse("workers-status"))
    assert 'hx-trigger="every 5s"' in page.content.decode()
    event = AuditEvent.objects.latest("id")
    assert (event.event_type, event.description, event.username) == (
        EventType.APPLICATION_ACTIVITY,
        "Inference workers status viewed",
        "ada",
    )

    partial = client.get(reverse("workers-status"), headers={"HX-Request": "true"}).content.decode()
    assert partial.strip().startswith('<div id="workers-status"') and "<html" not in partial
    assert gpu_worker.name in partial
    assert AuditEvent.objects.count() == before + 1


def test_the_menu_links_the_page_for_admins_only(client, admin, radiologist):
    client.force_login(admin)
    assert f'href="{reverse("workers-status")}"' in client.get(reverse("worklist")).content.decode()
    client.force_login(radiologist)
    assert f'href="{reverse("workers-status")}"' not in client.get(reverse("worklist")).content.decode()
    assert client.get(reverse("workers-status")).status_code == 403
