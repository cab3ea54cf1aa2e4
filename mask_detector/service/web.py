"""The service's web page and its REST API: FastAPI, served by uvicorn on a thread of the supervisor's process.

Pages (templates/, static/; nothing is loaded from elsewhere):

    /                   every camera: live picture, stream, people in view, people and compliance today, last alert
    /cameras/{id}       one camera: live picture, alerts with their snapshots, a clip player, compliance by hour
    /events             every alert and person, filtered by camera, kind, label and time, a page at a time
    /api                the API, from its OpenAPI description (/openapi.json)
    /login              the password, when the site sets one

The API the pages use is listed on /api. A camera's id in a URL is its name
made safe (files.safe_name), as in its MQTT topics. Pictures follow each
camera's privacy: with ``blur`` they are the pixelated ones the camera
draws; with ``stats`` a camera has no picture at all. A camera draws live
pictures only while a live view is open or latest.jpg was just asked for.
"""

import asyncio
import hmac
import secrets
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote

from mask_detector.errors import UserError
from mask_detector.files import safe_name
from mask_detector.service.config import host_and_port
from mask_detector.service.event_store import KINDS, LABELS, MOST_EVENTS, moment

HERE = Path(__file__).parent
# A live view asks for pictures this many seconds ahead, again every second while it is open: a closed page stops
# the camera drawing within that time.
WATCH_SECONDS = 3.0
# latest.jpg waits this long at most for a picture from a camera nobody watched.
LATEST_WAIT_SECONDS = 4.0
COOKIE = "mask_detector_session"
# Each wrong password waits this long, one after another, so guesses come one a second at most.
WRONG_PASSWORD_SECONDS = 1.0
# Paths open without a login: the login itself, the page's files, and the probes of a supervisor (systemd, Docker).
OPEN_PATHS = ("/login", "/healthz", "/readyz", "/static/")
# An event's snapshot and clip never change once written: a browser keeps them rather than asking each time a
# list of alerts is drawn again.
KEPT = {"Cache-Control": "private, max-age=86400, immutable"}
SECURITY_HEADERS = {
    # Every script and style comes from the service: an injected one would not run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Sessions:
    """Logins by ``password`` (None: no login asked), each lasting ``hours``."""

    def __init__(self, password, hours):
        self.password = password
        self.lifetime = hours * 3600
        self._tokens = {}  # token -> time.time() it expires
        self._checking = asyncio.Lock()

    def valid(self, token):
        expires = self._tokens.get(token or "")
        if expires is None:
            return False
        if expires < time.time():
            del self._tokens[token]
            return False
        return True

    async def log_in(self, password):
        """A new session's token, or None for a wrong password, told only after a wait that wrong tries share."""
        async with self._checking:
            if hmac.compare_digest(password.encode(), self.password.encode()):
                token = secrets.token_urlsafe(32)
                self._tokens[token] = time.time() + self.lifetime
                return token
            await asyncio.sleep(WRONG_PASSWORD_SECONDS)
            return None

    def log_out(self, token):
        self._tokens.pop(token or "", None)


def local_path(text):
    """``text`` if it is a path of this site (where a login goes back to), else /: never another site."""
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else "/"


class Web:
    """The page and API of a Supervisor, on ``site.web``; the port is taken at construction (a UserError if it
    cannot be), served from ``start`` (with the supervisor's event_store.EventStore) to ``stop``."""

    def __init__(self, site, supervisor):
        self.site, self.supervisor, self.store = site, supervisor, None
        host, port = host_and_port(site.web)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, *_, address = infos[0]
            self.socket = socket.socket(family, socket.SOCK_STREAM)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(128)
        except OSError as error:
            raise UserError(f"cannot serve the web page on {site.web}: {error.strerror or error}") from None
        self.stopping = threading.Event()
        self.app = create_app(self)
        self._server = self._thread = None

    @property
    def address(self):
        host, port = self.socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self, store):
        import uvicorn

        self.store = store
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.socket]}, name="web",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self.stopping.set()  # live views end their streams
        if self._server:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self.socket.close()

    # What the pages and the API read of the supervisor.

    def cameras(self):
        """{camera id: camera name}, in the site file's order."""
        return {safe_name(settings.camera): settings.camera for settings in self.site.cameras}

    def settings_of(self, name):
        return next(settings for settings in self.site.cameras if settings.camera == name)

    def has_pictures(self, name):
        return name in self.supervisor.states and self.settings_of(name).privacy != "stats"

    def camera_json(self, name):
        """A camera as the API gives it: its state message, with what the page shows beside it."""
        state = self.supervisor.states[name]
        midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
        today = self.store.people_since(name, midnight)
        last = self.store.last_alert(name)
        return {"id": safe_name(name), "name": name, "pictures": self.has_pictures(name),
                "state": state.message(), "today": today.to_json() | today.compliance_json(),
                "last_alert": last and self.event_json(last)}

    def event_json(self, event):
        """An event as the API gives it: the URLs of its pictures in place of the service's file paths."""
        shown = {key: value for key, value in event.items() if key not in ("snapshot", "clip")}
        pictures = self.has_pictures(event["camera"])
        for kind, suffix in (("snapshot", "snapshot.jpg"), ("clip", "clip.mp4")):
            if event.get(kind) and pictures:
                shown[f"{kind}_url"] = f"/api/events/{event['id']}/{suffix}"
        shown["camera_id"] = safe_name(event["camera"])
        return shown

    def watch(self, name):
        self.supervisor.cameras.watch(name, time.time() + WATCH_SECONDS)

    def picture(self, name):
        """(JPEG bytes, time.time() it came) of the camera's last live picture, or (None, 0)."""
        return self.supervisor.cameras.picture(name)

    def camera_name(self, camera_id):
        """The name of the camera of ``camera_id``; 404 when there is none."""
        name = self.cameras().get(camera_id)
        if name is None:
            raise _not_found(f"no camera {camera_id!r}")
        return name

    def pictured(self, camera_id):
        """The name of the camera of ``camera_id``; 404 when there is none, or it keeps no pictures."""
        name = self.camera_name(camera_id)
        if not self.has_pictures(name):
            raise _not_found(f"camera {name} keeps no pictures (privacy stats)")
        return name

    def event(self, event_id):
        """The event of ``event_id``; 404 when there is none."""
        found = self.store.event(event_id)
        if found is None:
            raise _not_found(f"no event {event_id}")
        return found

    def evidence(self, event_id, kind):
        """The path of an event's snapshot or clip (``kind``); 404 when it has none or it is no longer kept."""
        event = self.event(event_id)
        if not event.get(kind) or not self.has_pictures(event["camera"]):
            raise _not_found(f"event {event_id} has no {kind}")
        path = Path(event[kind])
        if not path.is_file():
            raise _not_found(f"event {event_id}'s {kind} is no longer kept")
        return path

    async def frames(self, name, request):
        """The camera's live pictures as MJPEG parts, each new one as it comes, until the viewer or the service
        goes; the camera is asked for pictures again every second meanwhile."""
        sent, asked = 0.0, 0.0
        while not self.stopping.is_set():
            now = time.time()
            if now - asked >= 1.0:
                self.watch(name)
                asked = now
                if await request.is_disconnected():
                    return
            picture, at = self.picture(name)
            if picture is not None and at > sent:
                sent = at
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(picture)).encode()
                       + b"\r\n\r\n" + picture + b"\r\n")
            await asyncio.sleep(0.05)

    def not_ready(self):
        """Why the service is not ready (a list of texts; empty: ready): a camera's stream down, the broker away."""
        reasons = [f"camera {name}: stream {state.stream}" for name, state in self.supervisor.states.items()
                   if state.stream in ("down", "starting")]
        if any(not publisher.connected for publisher in self.supervisor.publishers.values()):
            reasons.append("MQTT broker away")
        return reasons


def create_app(web):
    """The FastAPI application of a Web: its pages, its API and the guard before them."""
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    app = FastAPI(title="Face-mask detector", version=_version(), docs_url=None, redoc_url=None,
                  description="The service's cameras, events, statistics and pictures, as its web page reads them.")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    sessions = Sessions(web.site.web_password, web.site.web_session_hours)
    _guard(app, sessions)
    _pages(app, web, sessions)
    _service_routes(app, web)
    _event_routes(app, web)
    if any(web.has_pictures(settings.camera) for settings in web.site.cameras):
        _picture_routes(app, web)  # with privacy stats on every camera, no picture route exists at all
    return app


def _guard(app, sessions):
    """With a password, every route but OPEN_PATHS needs a session: pages lead to the login, the API says 401."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, RedirectResponse

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if sessions.password and not path.startswith(OPEN_PATHS) and not sessions.valid(request.cookies.get(COOKIE)):
            if path.startswith("/api/") or path == "/openapi.json":
                response = JSONResponse({"detail": "log in first: POST /login"}, status_code=401)
            else:
                response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def _pages(app, web, sessions):
    """The HTML pages (templates/) and the login."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse, RedirectResponse
    from fastapi.templating import Jinja2Templates

    templates = Jinja2Templates(directory=HERE / "templates")

    def page(request, template, **values):
        cameras = [{"id": camera_id, "name": name, "pictures": web.has_pictures(name)}
                   for camera_id, name in web.cameras().items()]
        return templates.TemplateResponse(request, template, {"cameras": cameras,
                                                              "with_login": bool(sessions.password), **values})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request):
        return page(request, "overview.html", title="Cameras")

    @app.get("/cameras/{camera_id}", response_class=HTMLResponse, include_in_schema=False)
    def camera_page(request: Request, camera_id: str):
        name = web.camera_name(camera_id)
        return page(request, "camera.html", title=name,
                    camera={"id": camera_id, "name": name, "pictures": web.has_pictures(name)})

    @app.get("/events", response_class=HTMLResponse, include_in_schema=False)
    def events_page(request: Request):
        return page(request, "events.html", title="Events", kinds=KINDS, labels=LABELS)

    @app.get("/api", response_class=HTMLResponse, include_in_schema=False)
    def api_page(request: Request):
        return page(request, "api.html", title="API", routes=_routes(app.openapi()))

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/"):
        return page(request, "login.html", title="Log in", next=local_path(next), wrong=False)

    @app.post("/login", include_in_schema=False)
    async def log_in(request: Request):
        # A plain form, read here: no multipart parser needed for one field.
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode(errors="replace")).items()}
        target = local_path(form.get("next", "/"))
        if not sessions.password:
            return RedirectResponse(target, status_code=303)
        token = await sessions.log_in(form.get("password", ""))
        if token is None:
            response = page(request, "login.html", title="Log in", next=target, wrong=True)
            response.status_code = 401
            return response
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(sessions.lifetime), httponly=True, samesite="strict")
        return response

    @app.post("/logout", include_in_schema=False)
    def log_out(request: Request):
        sessions.log_out(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response


def _service_routes(app, web):
    """The probes, the cameras and the statistics."""
    from fastapi import Query
    from fastapi.responses import Response

    @app.get("/healthz", tags=["service"], summary="200 while the service runs")
    def healthz():
        return Response("ok\n", media_type="text/plain")

    @app.get("/readyz", tags=["service"], summary="200 when every stream is up and the broker there; else 503 "
             "with the reasons")
    def readyz():
        reasons = web.not_ready()
        return Response("\n".join(reasons or ["ready"]) + "\n", status_code=503 if reasons else 200,
                        media_type="text/plain")

    @app.get("/api/cameras", tags=["cameras"], summary="Every camera: its state message, people today, last alert")
    def cameras():
        return [web.camera_json(name) for name in web.cameras().values()]

    @app.get("/api/cameras/{camera_id}", tags=["cameras"], summary="One camera, as in /api/cameras")
    def camera(camera_id: str):
        return web.camera_json(web.camera_name(camera_id))

    @app.get("/api/stats", tags=["statistics"], summary="People and compliance by hour, per camera")
    def stats(camera: str | None = Query(None, description="a camera's id; none: every camera"),
              hours: int = Query(24, ge=1, le=24 * 31)):
        names = [web.camera_name(camera)] if camera else list(web.cameras().values())
        return [{"camera": name, "id": safe_name(name), "hours": web.store.hourly(name, hours)} for name in names]


def _event_routes(app, web):
    """The events, filtered and paged."""
    from fastapi import HTTPException, Query

    @app.get("/api/events", tags=["events"], summary="Alerts and people, newest first, a page at a time")
    def events(camera: str | None = Query(None, description="a camera's id"),
               kind: str | None = Query(None, description="alert or person"),
               label: str | None = Query(None, description="mask, no_mask, incorrect or not_judged"),
               after: str | None = Query(None, description="from this time: Unix seconds or ISO 8601"),
               before: str | None = Query(None, description="before this time: Unix seconds or ISO 8601"),
               limit: int = Query(50, ge=1, le=MOST_EVENTS), offset: int = Query(0, ge=0)):
        if kind and kind not in KINDS:
            raise HTTPException(422, f"kind: expected one of {', '.join(KINDS)}")
        if label and label not in LABELS:
            raise HTTPException(422, f"label: expected one of {', '.join(LABELS)}")
        try:
            times = [None if text is None else moment(text) for text in (after, before)]
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        name = web.camera_name(camera) if camera else None
        found, total = web.store.events(name, kind, label, *times, limit, offset)
        return {"events": [web.event_json(event) for event in found], "total": total, "offset": offset,
                "limit": limit}

    @app.get("/api/events/{event_id}", tags=["events"], summary="One event")
    def event(event_id: int):
        return web.event_json(web.event(event_id))


def _picture_routes(app, web):
    """Live pictures and the alerts' snapshots and clips, of the cameras whose privacy keeps pictures."""
    from fastapi import Request
    from fastapi.responses import FileResponse, Response
    from starlette.responses import StreamingResponse

    @app.get("/api/cameras/{camera_id}/latest.jpg", tags=["pictures"], response_class=Response,
             summary="The camera's latest drawn frame (JPEG), drawn for this request if nobody watches")
    async def latest(camera_id: str):
        name = web.pictured(camera_id)
        asked = time.time()
        picture, at = web.picture(name)
        if at < asked - 2.0 / web.site.web_fps:  # older than a live view's pictures: ask for a new one
            web.watch(name)
            while time.time() - asked < LATEST_WAIT_SECONDS and web.picture(name)[1] < asked:
                await asyncio.sleep(0.05)
            picture, at = web.picture(name)
        if picture is None:
            raise _not_found(f"camera {name} has sent no picture yet: is its stream up?", 503)
        return Response(picture, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/cameras/{camera_id}/live.mjpg", tags=["pictures"], response_class=StreamingResponse,
             summary="The camera's drawn frames as MJPEG, a few a second (web_fps) while the request is open")
    async def live(camera_id: str, request: Request):
        return StreamingResponse(web.frames(web.pictured(camera_id), request), headers={"Cache-Control": "no-store"},
                                 media_type="multipart/x-mixed-replace; boundary=frame")

    @app.get("/api/events/{event_id}/snapshot.jpg", tags=["events"], summary="An alert's snapshot (JPEG)",
             response_class=FileResponse)
    def snapshot(event_id: int):
        return FileResponse(web.evidence(event_id, "snapshot"), media_type="image/jpeg", headers=KEPT)

    @app.get("/api/events/{event_id}/clip.mp4", tags=["events"], summary="An alert's clip (H.264 MP4)",
             response_class=FileResponse)
    def clip(event_id: int):
        return FileResponse(web.evidence(event_id, "clip"), media_type="video/mp4", headers=KEPT)


def _not_found(text, status=404):
    from fastapi import HTTPException

    return HTTPException(status, text)


def _routes(openapi):
    """The API's routes for its own page: (method, path, summary, [(parameter, where, description)])."""
    routes = []
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            parameters = [(p["name"], p["in"], p.get("description", "")) for p in operation.get("parameters", ())]
            routes.append((method.upper(), path, operation.get("summary", ""), parameters))
    return routes


def _version():
    from mask_detector import installed_version

    return installed_version() or "unknown"

