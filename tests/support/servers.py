"""Real HTTP servers on 127.0.0.1, each on a thread of its own, for the scripts to read streams and files from."""

import functools
import http.server
import re
import threading
import time
from pathlib import Path

import cv2


class _ServedInBackground:
    """A server on a thread of its own, from `with` to its end: subclasses set _server and _thread."""

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class MjpegServer(_ServedInBackground):
    """A real MJPEG stream over HTTP on 127.0.0.1, as many IP cameras serve one.

    ``connections`` says what each connection, in turn, gets: a number of
    frames of ``image`` at ``fps`` (then the connection is closed: a drop), or
    "silent" (accepted, then nothing is ever sent), or "stalled" (one frame,
    then nothing: FFmpeg opens it when its open timeout ends, and reads no
    frame). Connections past the list are refused with 503. Use as a context
    manager; ``url`` is the address, ``times`` the monotonic time of each request.
    """

    def __init__(self, image, connections, fps=25, user=None, password=None, hold=1):
        # A list of images is a scene that changes: each is sent for ``hold`` frames in turn, round and round.
        images = image if isinstance(image, list) else [image]
        jpegs = [cv2.imencode(".jpg", picture)[1].tobytes() for picture in images]
        plan, served, times = list(connections), [], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if not plan:
                    self.send_error(503)
                    return
                step = plan.pop(0)
                served.append(step)
                times.append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                if step == "stalled":
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpegs[0])
                    self.wfile.write(part + jpegs[0] + b"\r\n")
                    self.wfile.flush()
                if step in ("silent", "stalled"):
                    time.sleep(3600)
                for number in range(step):
                    jpeg = jpegs[number // hold % len(jpegs)]
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                    try:
                        self.wfile.write(part + jpeg + b"\r\n")
                    except OSError:
                        return
                    time.sleep(1 / fps)

            def log_message(self, *args):
                pass

        self.served, self.times = served, times
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        credentials = f"{user}:{password}@" if user else ""
        self.url = f"http://{credentials}127.0.0.1:{self._server.server_address[1]}/camera.mjpg"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)


class FileServer(_ServedInBackground):
    """A real HTTP server on 127.0.0.1 serving the files of ``folder``, as a plain web server does.

    With ``ranges`` it answers Range requests (bytes=START- and START-END) as
    web servers do; without, it sends every file whole, as Python's own
    (http.server) does. ``requests`` holds each request's path; ``url(name)``
    is a file's address. Use as a context manager.
    """

    def __init__(self, folder, ranges=True):
        requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")) if ranges else None
                if not asked:
                    super().do_GET()
                    return
                data = (Path(folder) / self.path.lstrip("/")).read_bytes()
                first, last = int(asked[1]), min(int(asked[2] or len(data) - 1), len(data) - 1)
                self.send_response(206)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
                self.send_header("Content-Length", str(last + 1 - first))
                self.end_headers()
                try:
                    self.wfile.write(data[first:last + 1])
                except OSError:
                    pass  # the reader hung up, as FFmpeg does when it seeks

            def log_message(self, *args):
                pass

        self.requests = requests
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name):
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"



class RecordingServer(_ServedInBackground):
    """An HTTP server on 127.0.0.1 that keeps every request it gets (method, path, headers, body), as a webhook's or
    an ntfy server's would. ``answers`` says, request by request, what each gets: a status (200, 500, ...) or
    ("hang", seconds): no answer for that long. Requests past the list get 200."""

    def __init__(self, answers=()):
        plan, self.requests = list(answers), []
        requests, lock = self.requests, threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    answer = plan.pop(0) if plan else 200
                    requests.append((self.command, self.path, dict(self.headers), body, answer))
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                    answer = 200
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def answered(self):
        """The requests answered 200 at once, in order (a request left hanging was given up by then)."""
        return [request for request in list(self.requests) if request[4] == 200]
