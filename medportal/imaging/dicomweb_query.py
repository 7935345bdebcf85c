"""QIDO-RS: query parameters to database filters, and the matching studies, series and instances.

Matching runs on the database rows; result attributes come from the header of a
stored instance (the rows keep only what the application needs). Only instances
stored as DICOM take part: a PNG/JPEG upload has no DICOM representation.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import QueryDict
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from medportal.imaging.dicomweb_json import (
    INSTANCE_ATTRIBUTES,
    SERIES_ATTRIBUTES,
    STUDY_ATTRIBUTES,
    result_json,
)
from medportal.imaging.dicomweb_retrieve import instance_header
from medportal.imaging.models import Instance, Series, Study

STUDY, SERIES, INSTANCE = "study", "series", "instance"
_RESERVED = {"limit", "offset", "includefield", "fuzzymatching"}
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE = re.compile(r"^\d{8}$")

# Query key -> (field from the level's model at that level, how it matches).
_KEYS = {
    STUDY: {
        "StudyInstanceUID": ("study_uid", "uid"),
        "PatientID": ("patient__patient_id", "wildcard"),
        "PatientName": ("patient__name", "name"),
        "PatientBirthDate": ("patient__birth_date", "exact"),
        "AccessionNumber": ("accession_number", "wildcard"),
        "StudyDate": ("study_date", "date"),
        "StudyDescription": ("description", "wildcard"),
        "ModalitiesInStudy": ("pk", "modalities"),
    },
    SERIES: {
        "SeriesInstanceUID": ("series_uid", "uid"),
        "Modality": ("modality", "list"),
        "SeriesNumber": ("series_number", "integer"),
        "SeriesDescription": ("description", "wildcard"),
        "BodyPartExamined": ("body_part", "wildcard"),
    },
    INSTANCE: {
        "SOPInstanceUID": ("sop_instance_uid", "uid"),
        "InstanceNumber": ("instance_number", "integer"),
    },
}
# How to reach each level's fields from a model of a lower level.
_PATHS = {
    STUDY: {STUDY: ""},
    SERIES: {STUDY: "study__", SERIES: ""},
    INSTANCE: {STUDY: "series__study__", SERIES: "series__", INSTANCE: ""},
}


class QueryError(Exception):
    """A query parameter has a value that cannot be matched; the message says which."""


@dataclass
class Query:
    level: str
    filters: Q = field(default_factory=Q)
    keywords: list[str] = field(default_factory=list)  # attributes the results carry besides the defaults
    include_all: bool = False
    limit: int = 0
    offset: int = 0
    ignored: list[str] = field(default_factory=list)  # keys not supported, for a Warning header


def _keyword(key: str) -> str | None:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        return keyword_for_tag(int(key, 16)) or None
    return key if tag_for_keyword(key) is not None else None


def _values(raw: list[str]) -> list[str]:
    return [v.strip() for value in raw for v in re.split(r"[\\,]", value) if v.strip()]


def _wildcard(value: str) -> str:
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value) + "$"


def _date(value: str) -> datetime.date | None:
    try:
        return datetime.datetime.strptime(value, "%Y%m%d").date() if _DATE.match(value) else None
    except ValueError:
        return None


def _match(path: str, kind: str, raw: list[str]) -> Q:
    value = raw[-1].strip()
    if kind in {"uid", "list", "modalities"}:
        values = _values(raw)
        if kind == "uid" and not all(_UID.match(v) and len(v) <= 64 for v in values):
            raise QueryError(f"{','.join(raw)!r} is not a list of UIDs")
        if kind == "modalities":
            studies = Series.objects.filter(modality__in=values).values("study_id")
            return Q(**{f"{path}__in": studies})
        return Q(**{f"{path}__in": values})
    if kind == "date":
        low, sep, high = value.partition("-")
        dates = [_date(end) for end in (low, high) if end]
        if not dates or None in dates or (not sep and len(dates) != 1):
            raise QueryError(f"{value!r} is not a date or a range of dates (YYYYMMDD, YYYYMMDD-YYYYMMDD)")
        if not sep:
            return Q(**{path: dates[0]})
        q = Q()
        if low:
            q &= Q(**{f"{path}__gte": _date(low)})
        if high:
            q &= Q(**{f"{path}__lte": _date(high)})
        return q
    if kind == "integer":
        try:
            return Q(**{path: int(value)})
        except ValueError:
            raise QueryError(f"{value!r} is not a whole number") from None
    if kind == "name":
        # Names are stored with their components joined by spaces; matching ignores case.
        value = value.replace("^", " ").rstrip()
        if "*" in value or "?" in value:
            return Q(**{f"{path}__iregex": _wildcard(value)})
        return Q(**{f"{path}__iexact": value})
    if "*" in value or "?" in value:
        return Q(**{f"{path}__regex": _wildcard(value)})
    return Q(**{path: value})


def _integer(params: QueryDict, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        number = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be a whole number, not {raw!r}") from None
    if number < 0:
        raise QueryError(f"{name} must not be negative")
    return number


def query_parse(params: QueryDict, *, level: str) -> Query:
    """The QIDO-RS query of ``params`` at ``level`` (study, series or instance)."""
    query = Query(level=level)
    query.limit = min(_integer(params, "limit", settings.DICOMWEB_MAX_RESULTS), settings.DICOMWEB_MAX_RESULTS)
    query.offset = _integer(params, "offset", 0)
    for value in _values(params.getlist("includefield")):
        if value.lower() == "all":
            query.include_all = True
        elif keyword := _keyword(value):
            query.keywords.append(keyword)
        else:
            query.ignored.append(f"includefield={value}")
    if params.get("fuzzymatching", "").lower() == "true":
        query.ignored.append("fuzzymatching")
    for key in params:
        if key in _RESERVED:
            continue
        keyword = _keyword(key)
        found = next(
            ((lvl, keys[keyword]) for lvl, keys in _KEYS.items() if keyword in keys and lvl in _PATHS[level]),
            None,
        )
        if found is None:
            query.ignored.append(key)
            continue
        query.keywords.append(keyword)
        raw = params.getlist(key)
        if not "".join(raw).strip():
            continue  # an empty value asks for the attribute without matching on it
        key_level, (field_name, kind) = found
        query.filters &= _match(_PATHS[level][key_level] + field_name, kind, raw)
    return query


def _page(queryset: QuerySet, query: Query) -> tuple[list, bool]:
    rows = list(queryset[query.offset : query.offset + query.limit + 1])
    return rows[: query.limit], len(rows) > query.limit


def _dicom_instances() -> QuerySet:
    return Instance.objects.filter(content_type=Instance.DICOM)


def _first_instance(**lookup) -> Instance:
    return (
        _dicom_instances()
        .filter(**lookup)
        .order_by("series__series_number", "series_id", "instance_number", "id")[0]
    )


UrlFor = Callable[..., str]


def studies_search(query: Query, *, url_for: UrlFor) -> tuple[list[dict], bool]:
    """The page of matching studies as DICOM JSON, and whether more results remain."""
    dicom = _dicom_instances().filter(series__study=OuterRef("pk"))
    studies = (
        Study.objects.filter(Exists(dicom))
        .filter(query.filters)
        .annotate(
            series_count=Count("series", distinct=True),
            instance_count=Count("series__instances", distinct=True),
        )
        .order_by("pk")
    )
    page, more = _page(studies, query)
    results = []
    for study in page:
        header = instance_header(_first_instance(series__study=study))
        computed = Dataset()
        modalities = study.series.exclude(modality="").values_list("modality", flat=True).distinct()
        computed.ModalitiesInStudy = sorted(set(modalities))
        computed.NumberOfStudyRelatedSeries = study.series_count
        computed.NumberOfStudyRelatedInstances = study.instance_count
        computed.InstanceAvailability = "ONLINE"
        computed.RetrieveURL = url_for(study=study.study_uid)
        results.append(_result(header, STUDY_ATTRIBUTES, query, computed))
    return results, more


def series_search(query: Query, *, url_for: UrlFor, study_uid: str | None = None) -> tuple[list[dict], bool]:
    """The page of matching series (of one study, or of all) as DICOM JSON, and whether more remain."""
    dicom = _dicom_instances().filter(series=OuterRef("pk"))
    series = Series.objects.filter(Exists(dicom)).filter(query.filters).select_related("study")
    if study_uid is not None:
        series = series.filter(study__study_uid=study_uid)
    series = series.annotate(instance_count=Count("instances", distinct=True)).order_by("pk")
    page, more = _page(series, query)
    attributes = SERIES_ATTRIBUTES if study_uid else STUDY_ATTRIBUTES + SERIES_ATTRIBUTES
    results = []
    for one in page:
        header = instance_header(_first_instance(series=one))
        computed = Dataset()
        computed.NumberOfSeriesRelatedInstances = one.instance_count
        computed.RetrieveURL = url_for(study=one.study.study_uid, series=one.series_uid)
        results.append(_result(header, attributes, query, computed))
    return results, more


def instances_search(
    query: Query, *, url_for: UrlFor, study_uid: str | None = None, series_uid: str | None = None
) -> tuple[list[dict], bool]:
    """The page of matching instances as DICOM JSON, and whether more remain."""
    instances = _dicom_instances().filter(query.filters).select_related("series__study")
    if study_uid is not None:
        instances = instances.filter(series__study__study_uid=study_uid)
    if series_uid is not None:
        instances = instances.filter(series__series_uid=series_uid)
    page, more = _page(instances.order_by("pk"), query)
    if series_uid:
        attributes = INSTANCE_ATTRIBUTES
    elif study_uid:
        attributes = SERIES_ATTRIBUTES + INSTANCE_ATTRIBUTES
    else:
        attributes = STUDY_ATTRIBUTES + SERIES_ATTRIBUTES + INSTANCE_ATTRIBUTES
    results = []
    for instance in page:
        computed = Dataset()
        computed.InstanceAvailability = "ONLINE"
        computed.RetrieveURL = url_for(
            study=instance.series.study.study_uid,
            series=instance.series.series_uid,
            instance=instance.sop_instance_uid,
        )
        results.append(_result(instance_header(instance), attributes, query, computed))
    return results, more


def _result(header: Dataset, attributes: tuple[str, ...], query: Query, computed: Dataset) -> dict:
    keywords = list(dict.fromkeys([*attributes, *query.keywords]))
    return result_json(header, keywords=keywords, include_all=query.include_all, computed=computed)
