"""``fer-age serve``'s HTTP service: photos in, every face with its box and emotions out (as ``analyze``).

``POST /analyze`` takes the image file's bytes as the body (``Content-Type: image/jpeg``, ``image/png``, ...)
or JSON ``{"image": "<base64 of the file>"}``; it answers ``{"faces": [...]}``, one object per face as
``fer_age.analyze`` returns them. ``GET /health`` answers the model and its labels. Bad requests get a 4xx
with ``{"error": "..."}``; one request is served at a time (one model in memory).
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

from fer_age.config import CropConfig
from fer_age.modeling.prediction import CropClassifier, face_records

MAX_BODY = 32 * 1024 * 1024  # bytes: larger requests are refused before being read


class RequestError(ValueError):
    """A request the service cannot answer, with its HTTP status."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def image_bytes(body: bytes, content_type: str) -> bytes:
    """The encoded image of a request: the body itself, or the base64 ``image`` of a JSON body."""
    if not content_type.startswith("application/json"):
        return body
    try:
        encoded = json.loads(body)["image"]
        return base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise RequestError(
            HTTPStatus.BAD_REQUEST, f'a JSON body must be {{"image": "<base64 of an image file>"}} ({err})'
        ) from None


def make_handler(model: CropClassifier, cfg: CropConfig, description: str, top_k: int = 1) -> type:
    """The request handler class of a service over ``model`` with the face settings ``cfg``."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: HTTPStatus, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/health":
                return self._answer(HTTPStatus.NOT_FOUND, {"error": "GET /health, or POST an image to /analyze"})
            self._answer(HTTPStatus.OK, {"status": "ok", "model": description, "labels": list(model.labels)})

        def do_POST(self) -> None:
            try:
                if self.path != "/analyze":
                    raise RequestError(HTTPStatus.NOT_FOUND, "POST the image to /analyze")
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise RequestError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length else HTTPStatus.BAD_REQUEST,
                        f"the body must hold one image of at most {MAX_BODY} bytes (got {length})",
                    )
                image = image_bytes(self.rfile.read(length), self.headers.get("Content-Type", ""))
            except RequestError as err:
                return self._answer(err.status, {"error": str(err)})
            self._answer(HTTPStatus.OK, {"faces": face_records(image, model, cfg, top_k)})

    return Handler


def serve(model: CropClassifier, cfg: CropConfig, description: str, host: str, port: int, top_k: int = 1) -> None:
    """Serve ``model`` on ``host``:``port`` until interrupted."""
    server = HTTPServer((host, port), make_handler(model, cfg, description, top_k))
    print(
        f"serving {description} on http://{host}:{server.server_port}: POST /analyze (image bytes, or JSON "
        '{"image": base64}), GET /health; Ctrl-C stops',
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
