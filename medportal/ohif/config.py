"""The OHIF Viewer's configuration (its ``app-config.js``), made by MedPortal for each user.

One DICOMweb data source: MedPortal's own ``/dicomweb``, on the page's own origin, read with the
user's login session (no token is ever put in the page). OHIF's own study list is off (the
worklist is MedPortal's); no extension or mode is added to those built into the dist.
"""

from __future__ import annotations

import json

from django.http import HttpRequest
from django.urls import reverse

from medportal.ohif.install import MOUNT

# Loading: how many requests OHIF keeps in flight per kind, and the prefetcher that loads the
# rest of the displayed series in the background (so scrolling never waits for the network).
MAX_REQUESTS = {"interaction": 100, "thumbnail": 5, "prefetch": 25}
TOUR = "basicViewerTour"  # the id of OHIF's guided tour of its viewer
PREFETCH = {"enabled": True, "displaySetsCount": 1, "maxNumPrefetchRequests": 25, "order": "closest"}


def data_source(dicomweb_root: str) -> dict:
    """OHIF's DICOMweb data source for a server at ``dicomweb_root`` (also used by bench/viewer.py)."""
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "dicomweb",
        "configuration": {
            "friendlyName": "MedPortal",
            "name": "dicomweb",
            "wadoUriRoot": dicomweb_root,
            "qidoRoot": dicomweb_root,
            "wadoRoot": dicomweb_root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "supportsStow": False,
            "dicomUploadEnabled": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "thumbnailDirect",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": True,
            "staticWado": False,
            "singlepart": "",
            "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
            "omitQuotationForMultipartRequest": True,
        },
    }


def app_config(*, dicomweb_root: str) -> dict:
    return {
        "routerBasename": MOUNT.rstrip("/"),
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": False,
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumRequests": MAX_REQUESTS,
        "studyPrefetcher": PREFETCH,
        "showErrorDetails": "production",
        "defaultDataSourceName": "dicomweb",
        "dataSources": [data_source(dicomweb_root)],
    }


def app_config_js(config: dict, *, login_url: str) -> str:
    """The script: what the dist's inline scripts set (removed for the CSP), then the config.
    A 401 from DICOMweb (the session ended) sends the whole window to the login page. OHIF's
    guided tour of its viewer counts as seen: the reading room is a workplace, not a demo."""
    return (
        f"window.PUBLIC_URL = {json.dumps(MOUNT)};\n"
        "try {\n"
        "  var shown = JSON.parse(localStorage.getItem('shownTours')) || [];\n"
        f"  if (shown.indexOf({json.dumps(TOUR)}) < 0) {{\n"
        f"    localStorage.setItem('shownTours', JSON.stringify(shown.concat([{json.dumps(TOUR)}])));\n"
        "  }\n"
        "} catch (e) {}\n"
        "window.browserImportFunction = function (name) { return import(name); };\n"
        f"window.config = {json.dumps(config, indent=1)};\n"
        "window.config.httpErrorHandler = function (error) {\n"
        "  if (error && error.status === 401) {\n"
        "    var top = window.top || window;\n"
        f"    top.location.assign({json.dumps(login_url)} + '?next=' + "
        "encodeURIComponent(top.location.pathname + top.location.search));\n"
        "  }\n"
        "};\n"
    )


def app_config_for(request: HttpRequest) -> str:
    login_url = reverse("login")
    root = request.build_absolute_uri(reverse("dicomweb-studies")).removesuffix("/studies")
    return app_config_js(app_config(dicomweb_root=root), login_url=login_url)
