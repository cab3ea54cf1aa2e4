"""Notifications without Home Assistant: each alert to a webhook, an ntfy topic or an e-mail address.

A site file's ``[[notify]]`` tables (config.NotifySettings), each one channel:
``webhook`` (a POST of the alert event as JSON, with ``headers``, and
``secret_headers`` for secrets: header -> environment variable), ``ntfy`` (the
alert as a message on a topic, the face's snapshot attached when there is
one) or ``email`` (through ``smtp_host``, the snapshot attached). ``cameras``
limits a channel to some cameras.

Sending is off the video's path: the supervisor offers each alert to each
channel's bounded queue and goes on; a thread per channel sends them in
order, each try within ``timeout`` seconds, tried again after 1, 2, 4, ...
seconds up to ``tries`` times. When a queue is full the oldest alert waiting
is dropped and counted, and an alert that could not be sent is counted and
said in one line.
"""

import json
import queue
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from mask_detector.labels import TEXT


def alert_text(event):
    """One line for a person: what, which camera, when."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.get("at", time.time())))
    return f"{TEXT.get(event.get('label'), event.get('label'))}: person {event.get('track_id')} at camera " \
           f"{event.get('camera')}, {when}"


def snapshot_of(event):
    """(file name, bytes) of the event's snapshot, or None when it has none (or it is gone)."""
    path = event.get("snapshot")
    try:
        return (Path(path).name, Path(path).read_bytes()) if path else None
    except OSError:
        return None


def post(url, body, headers, timeout, method="POST"):
    """An HTTP request; an error for anything but a 2xx answer (urllib raises it)."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answer.read()


def send_webhook(settings, event, timeout):
    headers = {"Content-Type": "application/json", **dict(settings.headers)}
    post(settings.webhook, json.dumps(event).encode(), headers, timeout)


def send_ntfy(settings, event, timeout):
    """ntfy takes a message in the body, or a file in the body with the message in a header."""
    headers = {"Title": f"Mask detector: {event.get('camera')}", "Tags": "warning", **dict(settings.headers)}
    snapshot = snapshot_of(event)
    if snapshot:
        name, data = snapshot
        # A header is Latin-1 at most: the text is ASCII (labels, numbers, the camera's name).
        headers |= {"Filename": name, "Message": alert_text(event).encode("ascii", "replace").decode()}
        post(settings.ntfy, data, headers, timeout, method="PUT")
    else:
        post(settings.ntfy, alert_text(event).encode(), headers, timeout)


def send_email(settings, event, timeout):
    message = EmailMessage()
    message["Subject"] = f"Mask detector: {alert_text(event)}"
    message["From"] = settings.sender
    message["To"] = settings.email
    message.set_content(alert_text(event) + "\n\n" + json.dumps(event, indent=1) + "\n")
    snapshot = snapshot_of(event)
    if snapshot:
        message.add_attachment(snapshot[1], maintype="image", subtype="jpeg", filename=snapshot[0])
    if settings.smtp_security == "tls":
        server = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                  context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with server:
        if settings.smtp_security == "starttls":
            server.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            server.login(settings.smtp_user, settings.smtp_password or "")
        server.send_message(message)


SENDERS = {"webhook": send_webhook, "ntfy": send_ntfy, "email": send_email}


class Channel:
    """One [[notify]] table's channel: its queue, and the thread that sends what waits in it."""

    def __init__(self, settings, say, first_wait=1.0):
        self.settings = settings
        self.kind = settings.kind
        self.name = settings.name  # what the site file points it at, secrets left out
        self.say = say
        self.first_wait = first_wait  # seconds before the second try; doubled before each one after
        self.sent = self.failed = self.dropped = 0
        self._queue = queue.Queue(maxsize=settings.queue)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name=f"notify {self.kind}", daemon=True)
        self._thread.start()

    def wants(self, camera):
        return not self.settings.cameras or camera in self.settings.cameras

    def offer(self, event):
        """Queue an alert to send; when the queue is full, the oldest waiting is dropped and counted."""
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()  # dropped: no longer waiting to be sent
                    with self._lock:
                        self.dropped += 1
                except queue.Empty:
                    pass

    def _work(self):
        while not self._stopping.is_set():
            try:
                event = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._send(event)
            self._queue.task_done()

    def _send(self, event):
        wait, problem = self.first_wait, ""
        for attempt in range(self.settings.tries):
            if attempt and self._stopping.wait(wait):
                break
            wait *= 2
            try:
                SENDERS[self.kind](self.settings, event, self.settings.timeout)
                with self._lock:
                    self.sent += 1
                return
            except Exception as error:  # noqa: BLE001 - whatever one send does, the channel goes on
                problem = describe(error)
        with self._lock:
            self.failed += 1
        self.say(f"warning: notification by {self.kind} to {self.name} failed "
                 f"({problem or 'stopped before it could be sent'}): alert of camera {event.get('camera')}, "
                 f"person {event.get('track_id')}")

    def waiting(self):
        return self._queue.unfinished_tasks

    def close(self):
        """Send nothing more (a try under way ends within its timeout)."""
        self._stopping.set()

    def stop(self, grace):
        """Give what waits ``grace`` seconds to go, then stop; what is still waiting is counted as dropped."""
        deadline = time.monotonic() + grace
        while self.waiting() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.close()
        self._thread.join(timeout=self.settings.timeout + 1)
        with self._lock:
            self.dropped += self._queue.qsize()


def describe(error):
    """A failed send in a few words (no URL: it may hold a secret)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(getattr(error.reason, "strerror", None) or error.reason)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__
