"""mask_detector/service/notify.py: alerts to a webhook, ntfy and e-mail, against real local servers: retried, timed
out, queued and dropped, off the video's path."""

import email
import json
import threading

from aiosmtpd.controller import Controller

from mask_detector.service.config import NotifySettings, Pairs
from mask_detector.service.notify import Channel
from support.broker import free_port
from support.scripts import wait_until
from support.servers import RecordingServer

ALERT = {"camera": "door", "at": 1796431642.5, "event": "alert", "track_id": 3, "label": "no_mask", "time": 12.4,
         "frame": 310, "box": [402, 110, 427, 142]}


def channel(said, **settings):
    return Channel(NotifySettings(**settings), said.append, first_wait=0.2)


def test_a_webhook_gets_the_alert_as_json_after_failures_and_a_hang():
    said = []
    # Two failures, then a request left hanging past the timeout, then an answer: the fourth try gets through.
    with RecordingServer([500, 503, ("hang", 3.0)]) as server:
        hook = channel(said, webhook=server.url + "/hook?token=s3cret", headers=Pairs({"X-Site": "shop"}.items()),
                       timeout=1.0, tries=4)
        hook.offer(ALERT)
        assert wait_until(lambda: hook.sent == 1, 30), (server.requests, said)
        hook.stop(1.0)
    assert len(server.requests) == 4 and len(server.answered()) == 1
    method, path, headers, body, _ = server.answered()[0]
    assert (method, path, headers["X-Site"], headers["Content-Type"]) == ("POST", "/hook?token=s3cret", "shop",
                                                                         "application/json")
    assert json.loads(body) == ALERT
    assert (hook.failed, hook.dropped, said) == (0, 0, [])


def test_an_alert_that_never_gets_through_is_counted_and_said_without_secrets():
    said = []
    with RecordingServer([500] * 10) as server:
        hook = channel(said, webhook=server.url + "/hook?token=s3cret", tries=3)
        hook.offer(ALERT)
        assert wait_until(lambda: hook.failed == 1, 30), server.requests
        hook.stop(1.0)
    assert len(server.requests) == 3
    assert said == [f"warning: notification by webhook to {server.url}/hook failed (HTTP 500 Internal Server Error): "
                    "alert of camera door, person 3"]
    assert "s3cret" not in said[0]


def test_a_full_queue_drops_the_oldest_and_counts_them_and_the_offer_never_waits():
    said = []
    with RecordingServer([("hang", 2.0)]) as server:
        hook = channel(said, webhook=server.url, queue=2, timeout=5.0)
        hook.offer(ALERT | {"track_id": 1})
        assert wait_until(lambda: len(server.requests) == 1, 30)  # the first is being sent: the server hangs
        offering = threading.Thread(target=lambda: [hook.offer(ALERT | {"track_id": n}) for n in range(2, 7)])
        offering.start()
        offering.join(timeout=1.0)
        assert not offering.is_alive()  # five offers while the channel is stuck: none waited
        assert wait_until(lambda: hook.sent == 3, 30), server.requests
        assert wait_until(lambda: hook.waiting() == 0, 30)  # the dropped ones wait for nothing
        hook.stop(1.0)
    assert hook.dropped == 3  # 2, 3 and 4: the queue kept the newest two
    assert [json.loads(body)["track_id"] for _, _, _, body, _ in server.requests] == [1, 5, 6]


def test_ntfy_gets_the_message_with_the_snapshot_attached(tmp_path):
    snapshot = tmp_path / "door_20261206-101502_person00003_no_mask_b41e07.jpg"
    snapshot.write_bytes(b"\xff\xd8 a jpeg \xff\xd9")
    with RecordingServer() as server:
        topic = channel([], ntfy=server.url + "/shop-masks")
        topic.offer(ALERT | {"snapshot": str(snapshot)})
        topic.offer(ALERT | {"track_id": 4})  # no snapshot: the message is the body
        assert wait_until(lambda: topic.sent == 2, 30), server.requests
        topic.stop(1.0)
    (method, path, headers, body, _), (_, _, plain_headers, text, _) = server.requests
    assert (method, path, body) == ("PUT", "/shop-masks", snapshot.read_bytes())
    assert headers["Filename"] == snapshot.name and headers["Title"] == "Mask detector: door"
    assert headers["Message"].startswith("No mask: person 3 at camera door, ")
    assert text.decode().startswith("No mask: person 4 at camera door, ") and "Filename" not in plain_headers


class Inbox:
    """What a real SMTP server (aiosmtpd) received."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


def test_email_goes_through_a_real_smtp_server_with_the_snapshot(tmp_path):
    snapshot = tmp_path / "face.jpg"
    snapshot.write_bytes(b"\xff\xd8 a jpeg \xff\xd9")
    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        mail = channel([], email="security@example.com", sender="alerts@example.com", smtp_host="127.0.0.1",
                       smtp_port=port, smtp_security="none")
        mail.offer(ALERT | {"snapshot": str(snapshot)})
        assert wait_until(lambda: mail.sent == 1, 30), inbox.messages
        mail.stop(1.0)
    finally:
        server.stop()
    sender, recipients, content = inbox.messages[0]
    message = email.message_from_bytes(content)
    assert (sender, recipients) == ("alerts@example.com", ["security@example.com"])
    assert message["Subject"].startswith("Mask detector: No mask: person 3 at camera door")
    attachments = [part for part in message.walk() if part.get_filename()]
    assert [(part.get_filename(), part.get_payload(decode=True)) for part in attachments] == [
        ("face.jpg", snapshot.read_bytes())]


def test_a_channel_takes_only_the_cameras_it_is_given():
    hook = channel([], webhook="http://127.0.0.1:9/hook", cameras=("door",))
    assert hook.wants("door") and not hook.wants("hall")
    assert channel([], webhook="http://127.0.0.1:9/hook").wants("hall")
    hook.stop(0)
