"""Two ways to run a site's cameras behind one small interface: local processes, or Ray actors.

A runner starts every camera, starts again those that stop (after a pause
that doubles from 1 s up to a minute, back to 1 s once the camera ran for a
minute) and hands the supervisor what they say. Its ``poll(wait)`` returns
the cameras' messages (camera.py) and its own, each (kind, camera, body):

    ("restart", camera, pause)  the camera stopped and starts again after ``pause`` seconds
    ("ended", camera, None)     its source ended: it is not started again

``stop()`` stops every camera and returns their last messages;
``watch(camera, until)`` has a camera make live pictures (camera.LivePicture)
until the time.time() ``until``, and ``picture(camera)`` gives the last one.
The supervisor counts; a runner only runs.
"""

import dataclasses
import multiprocessing
import os
import queue
import threading
import time

from mask_detector.errors import Terminated, UserError
from mask_detector.service.camera import SharedPicture, camera_process, run_camera

FIRST_PAUSE, LONGEST_PAUSE, STEADY_SECONDS = 1.0, 60.0, 60.0
# A camera that sends nothing this long, or receives frames it does not process, is taken as hung.
HANG_SECONDS = 60.0
# Seconds between two polls of the Ray actors.
POLL_SECONDS = 1.0
# Seconds the Ray actors get to wind their cameras up (clips written) when the service stops.
STOP_SECONDS = 20.0


def pause_before_restart(ran_seconds, pause):
    """(the pause before a stopped camera starts again, the pause after that): doubling, back to the first
    once the camera ran steadily."""
    pause = FIRST_PAUSE if ran_seconds >= STEADY_SECONDS else pause
    return pause, min(pause * 2, LONGEST_PAUSE)


@dataclasses.dataclass
class _Process:
    """A local camera's process and what decides when it starts again."""

    settings: object
    process: object = None
    started: float = 0.0
    pause: float = FIRST_PAUSE  # before its next start, unless it ran steadily first
    due: float = 0.0  # monotonic time of its next start
    ended: bool = False  # its source ended: not started again
    heard: float = 0.0  # monotonic time of its last message
    received: int = 0  # frames received from its source, as last reported
    frames: tuple = (0, 0, 0.0)  # (frames processed, frames received then, monotonic time) as they last moved

    def reported(self, report, now):
        self.received = report.frames_received
        if report.frames != self.frames[0]:
            self.frames = (report.frames, report.frames_received, now)

    def hung(self, now):
        """Silent, or receiving frames it does not process, for HANG_SECONDS."""
        frames, received_then, since = self.frames
        return now - self.heard > HANG_SECONDS or (self.received > received_then and now - since > HANG_SECONDS)


class LocalCameras:
    """Each camera in a process of its own, watched: one that crashes, hangs or loses its stream is started again."""

    def __init__(self, cameras, say, picture_fps=None):
        self.say = say
        self.context = multiprocessing.get_context("spawn")  # a forked TensorFlow or OpenCV can hang
        self.messages = self.context.Queue()
        self.cameras = {settings.camera: _Process(settings) for settings in cameras}
        self.picture_fps = picture_fps  # None: no live pictures (no web page)
        # Per camera, the time until which someone watches its live picture, shared with its process (and the
        # processes that replace it).
        self.watched = {name: self.context.Value("d", 0.0) for name in self.cameras} if picture_fps else {}
        self.pictures = {name: SharedPicture(self.context) for name in self.watched}
        # Each camera's share of the cores: threads that wait for each other's turn only cost more.
        self.threads = max(1, (os.cpu_count() or 1) // len(self.cameras))

    def watch(self, name, until):
        if name in self.watched:
            self.watched[name].value = until

    def picture(self, name):
        return self.pictures[name].get() if name in self.pictures else (None, 0.0)

    @property
    def ended(self):
        return all(camera.ended for camera in self.cameras.values())

    def poll(self, wait):
        self._start_due()
        taken = self._read(wait)
        return taken + self._check()

    def _start_due(self):
        now = time.monotonic()
        for name, camera in self.cameras.items():
            if camera.ended or camera.process is not None or now < camera.due:
                continue
            camera.process = self.context.Process(target=camera_process, name=f"camera {name}", daemon=True,
                                                  args=(camera.settings, self.messages, self.watched.get(name),
                                                        self.picture_fps or 1.0, self.pictures.get(name),
                                                        self.threads))
            camera.process.start()
            self.say(f"camera {name}: started (process {camera.process.pid})")
            camera.started = camera.heard = now
            camera.received, camera.frames = 0, (0, 0, now)

    def _read(self, wait):
        taken, deadline = [], time.monotonic() + wait
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return taken
            kind, name, body = message
            camera = self.cameras[name]
            camera.heard = time.monotonic()
            if kind == "report":
                camera.reported(body, camera.heard)
            taken.append(message)

    def _check(self):
        """Hung cameras killed; stopped ones to start again after their pause, or ended."""
        now, said = time.monotonic(), []
        for name, camera in self.cameras.items():
            process = camera.process
            if process is None:
                continue
            if process.is_alive():
                if camera.hung(now):
                    self.say(f"camera {name}: no sign of work for {HANG_SECONDS:g} s; stopping it to start again")
                    process.kill()
                continue
            process.join()
            camera.process = None
            # What it sent before it stopped comes before the word that it did.
            said += self._read(0.05)
            if process.exitcode == 0:
                camera.ended = True
                said.append(("ended", name, None))
                continue
            pause, camera.pause = pause_before_restart(now - camera.started, camera.pause)
            camera.due = now + pause
            self.say(f"camera {name}: stopped (exit status {process.exitcode}); starting it again in {pause:g} s")
            said.append(("restart", name, pause))
        return said

    def stop(self):
        cameras = [camera for camera in self.cameras.values() if camera.process is not None]
        for camera in cameras:
            if camera.process.is_alive():
                camera.process.terminate()
        # Their messages are read while they wind up: a process does not end before what it put is taken.
        taken, deadline = [], time.monotonic() + 10
        while time.monotonic() < deadline and any(camera.process.is_alive() for camera in cameras):
            taken += self._read(0.1)
        for camera in cameras:
            if camera.process.is_alive():
                camera.process.kill()
            camera.process.join()
        return taken + self._read(0.5)


class CameraActor:
    """One camera as a Ray actor: run on a thread, so that the driver's polls are answered meanwhile.

    It starts its camera again when the stream is lost, with the same growing pause; Ray starts the
    actor again when its process dies (``max_restarts``), on whichever node has room.
    """

    def __init__(self, settings, folder, picture_fps=None):
        from mask_detector.parallel import use_threads

        use_threads(1)  # the one CPU the actor asked Ray for
        os.chdir(folder)  # relative paths in the site file are from the driver's folder, as for local cameras
        self.settings = settings
        self.picture_fps = picture_fps
        self.watched_until = 0.0  # see watch
        self._picture = None  # the last live picture not yet polled: only the last goes to the driver
        self.messages = queue.Queue()
        self.ended = False
        self.stopping = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        following = FIRST_PAUSE
        while True:
            started, failed = time.monotonic(), False
            try:
                run_camera(self.settings, self.messages.put, self.stopping,
                           (lambda: self.watched_until) if self.picture_fps else None, self.picture_fps or 1.0, self)
            except UserError as error:
                failed = True
                self.messages.put(("error", self.settings.camera, str(error)))
            except Terminated:
                pass  # asked to stop: the run is wound up
            if not failed or self.stopping.is_set():
                self.messages.put(("ended", self.settings.camera, None))
                self.ended = True
                return
            pause, following = pause_before_restart(time.monotonic() - started, following)
            self.messages.put(("restart", self.settings.camera, pause))
            self.stopping.wait(pause)

    def stop(self):
        """Wind the camera's run up, as SIGTERM does a local camera's: people leave, clips are written."""
        self.stopping.set()

    def watch(self, until):
        """Make live pictures until the time.time() ``until`` (the last comes with the next poll)."""
        self.watched_until = until

    def put(self, jpeg):
        """A live picture (as SharedPicture.put)."""
        self._picture = jpeg

    def poll(self):
        """The messages since the last poll, and the last live picture since then."""
        picture, self._picture = self._picture, None
        taken = [("picture", self.settings.camera, picture)] if picture else []
        while True:
            try:
                taken.append(self.messages.get_nowait())
            except queue.Empty:
                return taken


class RayCameras:
    """Each camera a Ray actor at a cluster connected to already (ray_cluster.connect_ray); polled once a second.

    An actor's messages come in the order they were sent. An actor that Ray
    starts again after its process died starts its camera from nothing: the
    driver counts that as a restart.
    """

    def __init__(self, cameras, say, picture_fps=None):
        import ray

        self.say = say
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(CameraActor)
        self.actors = {settings.camera: remote.remote(settings, os.getcwd(), picture_fps) for settings in cameras}
        self.ended_cameras = set()
        self.pictures = {}  # camera -> (its last live picture, the time.time() it came)
        self._received = dict.fromkeys(self.actors, 0)  # frames received in each camera's run, as last reported
        self._polled = 0.0
        self._stopped = False

    @property
    def ended(self):
        return self.ended_cameras == set(self.actors)

    def poll(self, wait):
        import ray

        time.sleep(max(0.0, min(wait, self._polled + POLL_SECONDS - time.monotonic())))
        self._polled = time.monotonic()
        names = [name for name in self.actors if name not in self.ended_cameras]
        answers = [self.actors[name].poll.remote() for name in names]
        ready, _ = ray.wait(answers, num_returns=len(answers), timeout=10)
        taken = []
        for name, answer in zip(names, answers):
            if answer not in ready:
                continue  # an actor being started again by Ray: asked again next time
            try:
                taken += self._restarts_by_ray(ray.get(answer))
            except ray.exceptions.RayActorError:
                continue
        self.ended_cameras |= {name for kind, name, _ in taken if kind == "ended"}
        return taken

    def watch(self, name, until):
        if name not in self.ended_cameras:
            self.actors[name].watch.remote(until)

    def picture(self, name):
        return self.pictures.get(name, (None, 0.0))

    def _restarts_by_ray(self, messages):
        """``messages`` with a restart before the first report of a camera whose actor Ray started again.

        Its camera says nothing of that (its process died): it shows as frames counted again from 0.
        """
        said = []
        for kind, name, body in messages:
            if kind == "picture":
                self.pictures[name] = (body, time.time())
                continue  # kept here, for the web page: nothing the supervisor counts
            if kind == "restart":
                self._received[name] = 0
            elif kind == "report":
                if body.frames_received < self._received[name]:
                    said.append(("restart", name, 0.0))
                self._received[name] = body.frames_received
            said.append((kind, name, body))
        return said

    def stop(self):
        """Ask every actor to wind its camera up, take their last messages for STOP_SECONDS at most, then kill
        them (a second call only returns)."""
        import ray

        if self._stopped:
            return []
        self._stopped = True
        for actor in self.actors.values():
            actor.stop.remote()
        taken, deadline = [], time.monotonic() + STOP_SECONDS
        while not self.ended and time.monotonic() < deadline:
            taken += self.poll(0.5)
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        return taken
