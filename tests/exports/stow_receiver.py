"""A STOW-RS receiver on a real socket, for "Send to PACS" over DICOMweb: it reads the
multipart/related body part by part (MedPortal's reader), decodes each part with pydicom,
and answers with the Store Instances Response (DICOM JSON) as PS3.18 says."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydicom

from medportal.imaging.multipart import media_type, parts_read


@dataclass
class StowReceiver:
    url: str
    token: str
    received: list[pydicom.Dataset] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def start_stow_receiver(token: str) -> tuple[StowReceiver, ThreadingHTTPServer]:
    """Start one on a free port; the caller shuts the server down."""
    receiver = StowReceiver(url="", token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            receiver.authorizations.append(self.headers.get("Authorization", ""))
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self._answer(401, {})
            kind, params = media_type(self.headers.get("Content-Type", ""))
            if kind != "multipart/related" or params.get("type") != "application/dicom":
                return self._answer(415, {})
            body = io.BytesIO(self.rfile.read(int(self.headers["Content-Length"])))
            stored = []
            for part in parts_read(body, params["boundary"], max_part_bytes=10_000_000):
                dataset = pydicom.dcmread(io.BytesIO(part.data))
                receiver.received.append(dataset)
                stored.append(
                    {
                        "00081150": {"vr": "UI", "Value": [dataset.SOPClassUID]},
                        "00081155": {"vr": "UI", "Value": [dataset.SOPInstanceUID]},
                    }
                )
            self._answer(200, {"00081199": {"vr": "SQ", "Value": stored}})

        def _answer(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/dicomweb/studies"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return receiver, server
