"""``g3an study serve``: the rating web page and its small JSON API (standard library only).

Routes::

    GET  /                  the page (inline HTML, CSS and JS; no external assets)
    POST /api/rater         {} -> {"rater": TOKEN}: a new anonymous rater id (random, 24 characters)
    GET  /api/next?rater=T  the next pair this rater has not answered, in a per-rater random order:
                            {"done": false, "pair": ID, "left": URL, "right": URL, "answered": k, "total": n}
                            or {"done": true, ...} once every pair is answered
    POST /api/answer        {"rater": T, "pair": ID, "choice": "left"|"right", "elapsed_ms": int?}
                            -> 200 stored (committed before the reply), 409 already answered
    GET  /media/<id>.mp4    a video of the study (only ids listed in the manifest; Range requests work)

Safety: request paths are matched against fixed routes and media ids looked up in a dict (user input is
never joined into a file path); bodies above :data:`MAX_BODY` bytes get 413; every input is validated
(400 for malformed, 404 for unknown ids); any unexpected exception gives a generic 500 and is logged
on the server only.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from g3an.study.create import load_manifest
from g3an.study.db import DB_FILE, StudyDB

__all__ = ["MAX_BODY", "StudyServer", "make_server"]

log = logging.getLogger("g3an.study.server")

#: largest accepted request body in bytes
MAX_BODY = 4096
_RATER = re.compile(r"[A-Za-z0-9_-]{24}")
_PAIR = re.compile(r"p[0-9]{4,6}")
_MEDIA = re.compile(r"/media/([0-9a-f]{16})\.mp4")
_RANGE = re.compile(r"bytes=([0-9]{0,15})-([0-9]{0,15})")


class ClientError(Exception):
    """A request the client got wrong: answered with ``status`` and ``message`` as JSON."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class StudyServer(ThreadingHTTPServer):
    """A threaded HTTP server for one study directory.

    Args:
        study: the study directory (made by ``g3an study create``).
        address: ``(host, port)``; port 0 picks a free one (see ``server_address``).
        max_raters: registrations accepted in all (more get 503), a bound on what strangers can store.
        max_connections: connections served at once (one thread each); more are closed at once, so idle or
            slow clients cannot exhaust the server's threads.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, study: str | Path, address: tuple[str, int], max_raters: int = 100_000,
                 max_connections: int = 256) -> None:  # fmt: skip
        self.study = Path(study)
        self.max_raters = max_raters
        self.slots = threading.BoundedSemaphore(max_connections)
        self.manifest = load_manifest(self.study)
        media_dir = (self.study / "media").resolve()
        self.media: dict[str, Path] = {}
        for mid, entry in self.manifest["media"].items():
            path = (self.study / entry["file"]).resolve()
            if path.parent != media_dir or not path.is_file():  # a manifest edited to point elsewhere
                raise ValueError(f"{self.study}: media {mid} is not a file in {media_dir}")
            self.media[mid] = path
        self.pairs: dict[str, dict[str, Any]] = {p["id"]: p for p in self.manifest["pairs"]}
        self.seed = int(self.manifest.get("seed", 0))
        self.db = StudyDB(self.study / DB_FILE)
        self.raters = self.db.num_raters()
        self.raters_lock = threading.Lock()
        self.page = _PAGE.replace("__QUESTION__", _html_escape(str(self.manifest.get("question", ""))))
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self.db.close()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a connection in its own thread, or close it at once when every slot is taken."""
        if not self.slots.acquire(blocking=False):
            log.warning("connection from %s refused: %s", client_address, "all connection slots are in use")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Handle one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def server_close(self) -> None:
        """Close the socket and the database."""
        super().server_close()
        self.db.close()

    def order(self, rater: str) -> list[str]:
        """The order in which ``rater`` sees the pairs: a shuffle seeded by the study seed and the rater id."""
        ids = sorted(self.pairs)
        random.Random(f"{self.seed}:{rater}").shuffle(ids)
        return ids

    @property
    def url(self) -> str:
        """The address the server listens on, as a URL."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"


def make_server(study: str | Path, host: str = "127.0.0.1", port: int = 8000, max_raters: int = 100_000,
                max_connections: int = 256) -> StudyServer:  # fmt: skip
    """A :class:`StudyServer` bound to ``host:port`` (not yet serving: call ``serve_forever``)."""
    return StudyServer(study, (host, port), max_raters, max_connections)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class _Handler(BaseHTTPRequestHandler):
    server: StudyServer
    server_version = "g3an-study"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds a client may take to send a request, or keep an idle connection open

    # -- plumbing --------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", {"Cache-Control": "no-store"})

    def _dispatch(self, route: Any) -> None:
        try:
            route()
        except ClientError as err:
            self._reply_error(err.status, err.message)
        except (TimeoutError, ConnectionError):  # the client went away, or was too slow to send its body
            self.close_connection = True
        except Exception:
            log.exception("error handling %s %s", self.command, self.path)
            self.close_connection = True
            self._reply_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")

    def _reply_error(self, status: int, message: str) -> None:
        try:
            self._json(status, {"error": message})
        except OSError:  # nobody is listening any more
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by the base class (bad request line, long headers) as short JSON, no details."""
        self.close_connection = True
        try:
            body = json.dumps({"error": HTTPStatus(code).phrase}).encode()
        except ValueError:
            body = b'{"error": "error"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    # -- methods ---------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _not_allowed(self) -> None:
        self._dispatch(self._refuse)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = do_CONNECT = _not_allowed

    def _refuse(self) -> None:
        raise ClientError(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")

    # -- routes ----------------------------------------------------------------------------------------
    def _get(self) -> None:
        parts = urlsplit(self.path)
        if parts.path in ("/", "/index.html"):
            csp = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                   "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'")  # fmt: skip
            self._send(HTTPStatus.OK, self.server.page.encode(), "text/html; charset=utf-8",
                       {"Content-Security-Policy": csp, "Cache-Control": "no-store"})  # fmt: skip
            return
        if parts.path == "/api/next":
            try:
                query = parse_qs(parts.query, max_num_fields=4)
            except ValueError:
                raise ClientError(HTTPStatus.BAD_REQUEST, "too many query fields") from None
            values = query.get("rater", [])
            if len(values) != 1:
                raise ClientError(HTTPStatus.BAD_REQUEST, "give one rater id: /api/next?rater=ID")
            self._json(HTTPStatus.OK, self._next(self._rater(values[0])))
            return
        match = _MEDIA.fullmatch(parts.path)
        if match and not parts.query and match.group(1) in self.server.media:
            self._media(self.server.media[match.group(1)])
            return
        if parts.path in ("/api/rater", "/api/answer"):
            raise ClientError(HTTPStatus.METHOD_NOT_ALLOWED, "use POST")
        raise ClientError(HTTPStatus.NOT_FOUND, "not found")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/api/rater", "/api/answer"):
            if path == "/" or path == "/api/next" or _MEDIA.fullmatch(path):
                raise ClientError(HTTPStatus.METHOD_NOT_ALLOWED, "use GET")
            raise ClientError(HTTPStatus.NOT_FOUND, "not found")
        body = self._body()
        if path == "/api/rater":
            srv = self.server
            with srv.raters_lock:
                if srv.raters >= srv.max_raters:
                    raise ClientError(HTTPStatus.SERVICE_UNAVAILABLE, "the study takes no more raters")
                rater = secrets.token_urlsafe(18)
                srv.db.add_rater(rater, self.headers.get("User-Agent", ""))
                srv.raters += 1
            self._json(HTTPStatus.OK, {"rater": rater, "total": len(self.server.pairs)})
            return
        self._answer(body)

    # -- helpers ---------------------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ClientError(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length")
        raw = self.headers.get("Content-Length")
        if raw is None:
            length = 0
        elif not raw.isdigit() or len(raw) > 12:
            self.close_connection = True
            raise ClientError(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        else:
            length = int(raw)
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise ClientError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body above {MAX_BODY} bytes")
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            self.close_connection = True
            raise ClientError(HTTPStatus.BAD_REQUEST, "incomplete body")
        if not data.strip():
            return {}
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ClientError(HTTPStatus.BAD_REQUEST, "the body is not valid JSON") from None
        if not isinstance(obj, dict):
            raise ClientError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return obj

    def _rater(self, value: Any) -> str:
        if not isinstance(value, str) or not _RATER.fullmatch(value):
            raise ClientError(HTTPStatus.BAD_REQUEST, "malformed rater id")
        if not self.server.db.has_rater(value):
            raise ClientError(HTTPStatus.NOT_FOUND, "unknown rater id (get one with POST /api/rater)")
        return value

    def _next(self, rater: str) -> dict[str, Any]:
        done = self.server.db.answered(rater)
        total = len(self.server.pairs)
        todo = [pid for pid in self.server.order(rater) if pid not in done][:2]
        if not todo:
            return {"done": True, "answered": len(done), "total": total}
        pair = self.server.pairs[todo[0]]
        upcoming = [f"/media/{self.server.pairs[pid][side]}.mp4" for pid in todo[1:] for side in ("left", "right")]
        return {"done": False, "pair": todo[0], "left": f"/media/{pair['left']}.mp4",
                "right": f"/media/{pair['right']}.mp4", "preload": upcoming, "answered": len(done),
                "total": total}  # fmt: skip

    def _answer(self, body: dict[str, Any]) -> None:
        unknown = set(body) - {"rater", "pair", "choice", "elapsed_ms"}
        if unknown:
            raise ClientError(HTTPStatus.BAD_REQUEST, f"unknown field(s): {', '.join(sorted(unknown))[:100]}")
        pair = body.get("pair")
        choice = body.get("choice")
        elapsed = body.get("elapsed_ms")
        if not isinstance(pair, str) or not _PAIR.fullmatch(pair):
            raise ClientError(HTTPStatus.BAD_REQUEST, "malformed pair id")
        if choice not in ("left", "right"):
            raise ClientError(HTTPStatus.BAD_REQUEST, "choice must be 'left' or 'right'")
        if elapsed is not None and (
            not isinstance(elapsed, int) or isinstance(elapsed, bool) or not 0 <= elapsed <= 86_400_000
        ):
            raise ClientError(HTTPStatus.BAD_REQUEST, "elapsed_ms must be an integer number of milliseconds")
        rater = self._rater(body.get("rater"))
        if pair not in self.server.pairs:
            raise ClientError(HTTPStatus.NOT_FOUND, "unknown pair id")
        if not self.server.db.add_answer(rater, pair, choice, elapsed):
            raise ClientError(HTTPStatus.CONFLICT, "this pair was already answered by this rater")
        answered = len(self.server.db.answered(rater))
        self._json(HTTPStatus.OK, {"stored": True, "answered": answered, "total": len(self.server.pairs)})

    def _media(self, path: Path) -> None:
        data = path.read_bytes()
        size = len(data)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        spec = self.headers.get("Range")
        if spec is None:
            self._send(HTTPStatus.OK, data, "video/mp4", headers)
            return
        match = _RANGE.fullmatch(spec.strip())
        if not match or match.group(1) == match.group(2) == "":
            raise ClientError(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "unsupported range")
        first, last = match.groups()
        if first == "":  # the last N bytes
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last)) if last else size - 1
        if start >= size or start > end:
            unsatisfiable = {"Content-Range": f"bytes */{size}"}
            self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "video/mp4", unsatisfiable)
            return
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(HTTPStatus.PARTIAL_CONTENT, data[start : end + 1], "video/mp4", headers)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Video study</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f4; color: #222; text-align: center; }
main { max-width: 900px; margin: 0 auto; padding: 1.5em; }
h1 { font-size: 1.4em; }
#pair { display: flex; gap: 2em; justify-content: center; flex-wrap: wrap; }
figure { margin: 0; }
video { width: 320px; height: 320px; background: #000; object-fit: contain; image-rendering: pixelated; }
button { font-size: 1.1em; padding: .5em 1.5em; margin-top: .5em; cursor: pointer; }
button:disabled { cursor: default; opacity: .5; }
#progress { margin: 1em 0; color: #555; }
#bar { height: 6px; background: #ddd; border-radius: 3px; overflow: hidden; max-width: 660px; margin: .5em auto; }
#fill { height: 100%; width: 0; background: #4a7; }
#msg { min-height: 1.5em; color: #a33; }
.hint { color: #777; font-size: .9em; }
</style></head>
<body><main>
<h1 id="question">__QUESTION__</h1>
<div id="pair" hidden>
  <figure><video id="left" loop muted playsinline preload="auto"></video>
    <figcaption><button id="choose-left" disabled>Left (1 / &larr;)</button></figcaption></figure>
  <figure><video id="right" loop muted playsinline preload="auto"></video>
    <figcaption><button id="choose-right" disabled>Right (2 / &rarr;)</button></figcaption></figure>
</div>
<div id="progress"></div><div id="bar"><div id="fill"></div></div>
<p id="msg" role="status"></p>
<p class="hint">Answer by clicking a button, or with the keys 1 / 2 or the left / right arrows.
Your answers are anonymous.</p>
<div id="done" hidden><h2>Thank you!</h2><p>You have answered every pair.</p></div>
</main>
<script>
"use strict";
let rater = null, current = null, shownAt = 0, busy = false;
const $ = (id) => document.getElementById(id);
async function api(method, url, body) {
  const opts = {method: method, headers: {}};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(url, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  return {status: r.status, data: data};
}
function progress(answered, total) {
  $("progress").textContent = answered + " / " + total + " answered";
  $("fill").style.width = (total ? 100 * answered / total : 0) + "%";
}
function enable(on) { $("choose-left").disabled = !on; $("choose-right").disabled = !on; }
async function getRater() {
  let id = null;
  try { id = window.localStorage.getItem("g3an-study-rater"); } catch (e) { id = null; }
  if (id) {
    const r = await api("GET", "/api/next?rater=" + encodeURIComponent(id));
    if (r.status === 200) { return id; }
  }
  const r = await api("POST", "/api/rater", {});
  if (r.status !== 200) { throw new Error("could not register"); }
  try { window.localStorage.setItem("g3an-study-rater", r.data.rater); } catch (e) { /* private mode */ }
  return r.data.rater;
}
async function next() {
  enable(false);
  const r = await api("GET", "/api/next?rater=" + encodeURIComponent(rater));
  if (r.status !== 200) { $("msg").textContent = "Could not load the next pair; reload the page."; return; }
  progress(r.data.answered, r.data.total);
  if (r.data.done) { $("pair").hidden = true; $("done").hidden = false; current = null; return; }
  current = r.data.pair;
  const left = $("left"), right = $("right");
  left.src = r.data.left; right.src = r.data.right;
  $("pair").hidden = false; $("pair").dataset.pair = current;
  try { await Promise.all([loaded(left), loaded(right)]); }
  catch (e) { $("msg").textContent = "A video could not be loaded; reload the page."; return; }
  left.currentTime = 0; right.currentTime = 0;  // both loops start together
  await Promise.allSettled([left.play(), right.play()]);
  preload(r.data.preload);
  shownAt = Date.now();
  enable(true);
}
function loaded(video) {
  return new Promise((resolve, reject) => {
    if (video.readyState >= 3) { resolve(); return; }
    const done = (ok) => () => {
      video.removeEventListener("canplay", onOk); video.removeEventListener("error", onErr);
      if (ok) { resolve(); } else { reject(new Error("video")); }
    };
    const onOk = done(true), onErr = done(false);
    video.addEventListener("canplay", onOk); video.addEventListener("error", onErr);
  });
}
const preloaded = [];
function preload(urls) {  // fetch the next pair's videos while this one is watched
  preloaded.length = 0;
  for (const url of urls || []) {
    const v = document.createElement("video");
    v.preload = "auto"; v.muted = true; v.src = url; preloaded.push(v);
  }
}
async function choose(side) {
  if (!current || busy) { return; }
  busy = true; enable(false);
  try {
    const r = await api("POST", "/api/answer",
      {rater: rater, pair: current, choice: side, elapsed_ms: Math.min(86400000, Date.now() - shownAt)});
    if (r.status === 200 || r.status === 409) { $("msg").textContent = ""; await next(); }
    else { $("msg").textContent = "Your answer was not saved (" + (r.data.error || r.status) + ")."; enable(true); }
  } catch (e) { $("msg").textContent = "Network error; try again."; enable(true); }
  busy = false;
}
$("choose-left").addEventListener("click", () => choose("left"));
$("choose-right").addEventListener("click", () => choose("right"));
document.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowLeft" || ev.key === "1") { choose("left"); }
  else if (ev.key === "ArrowRight" || ev.key === "2") { choose("right"); }
});
getRater().then((id) => { rater = id; return next(); })
  .catch(() => { $("msg").textContent = "The study server is not reachable; reload the page."; });
</script>
</body></html>
"""
