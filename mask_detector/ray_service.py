"""A site's cameras on a Ray cluster (--config site.toml --ray ADDRESS): one actor per camera.

Each actor runs its camera as a process of the local service would, and
publishes to the MQTT broker itself, so that nothing central stands between
a camera and its broker. Inside, it starts its camera again when the stream
is lost, with the same growing pause; Ray starts the actor again when its
process dies (``max_restarts``), on whichever node has room. The driver asks
every actor for its messages once a second, for --events, --stats and /metrics,
and counts the alerts from the events as the local supervisor does: an actor's
events and states come in the order they were sent, but a poll can take an
alert before the state that counts it.
"""

import queue
import threading
import time

from mask_detector.errors import UserError
from mask_detector.service import FIRST_PAUSE, CameraState, Supervisor, pause_before_restart, run_camera

POLL_SECONDS = 1.0


class CameraActor:
    """One camera, run on a thread of the actor so that the driver's calls are answered meanwhile."""

    def __init__(self, settings, mqtt, state_every, folder):
        import os

        os.chdir(folder)  # relative paths in the site file are from the driver's folder, as for local cameras
        from mask_detector.mqtt import MqttPublisher

        self.settings, self.state_every = settings, state_every
        # The actor publishes itself: no central process stands between a camera and its broker.
        self.publisher = MqttPublisher(mqtt, settings.camera) if mqtt else None
        self.messages = queue.Queue()
        self.state = CameraState(settings.camera)
        self.ended = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        following = FIRST_PAUSE
        while True:
            started = time.monotonic()
            try:
                run_camera(self.settings, _Keeping(self), self.state, self.publisher, self.state_every)
                self.ended = True
                if self.publisher:
                    self.publisher.close()
                return
            except UserError as error:
                self.messages.put(("error", self.settings.camera, str(error)))
            pause, following = pause_before_restart(time.monotonic() - started, following)
            self.state.restarts += 1
            time.sleep(pause)

    def poll(self):
        """The messages since the last poll, and whether the camera's source has ended."""
        taken = []
        while True:
            try:
                taken.append(self.messages.get_nowait())
            except queue.Empty:
                return taken, self.ended


class _Keeping:
    """The actor's queue, keeping the latest state too: a camera started again goes on from its totals."""

    def __init__(self, actor):
        self.actor = actor

    def put(self, message):
        if message[0] == "state":
            restarts = self.actor.state.restarts
            self.actor.state = message[2]
            self.actor.state.restarts = restarts
        self.actor.messages.put(message)


class RaySupervisor(Supervisor):
    """The Supervisor's bookkeeping (events, stats, metrics), with Ray actors in place of processes."""

    def __init__(self, site, out=None):
        import os
        import sys

        super().__init__(site, out or sys.stdout)
        import ray

        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(CameraActor)
        self.actors = {name: remote.remote(camera.settings, site.mqtt, site.state_every, os.getcwd())
                       for name, camera in self.cameras.items()}
        self._polled = 0.0

    def _start_due(self):
        pass  # the actors start their cameras, and start them again, themselves

    def _connect(self):
        pass  # each actor publishes to the broker itself

    def _disconnect(self):
        pass

    def _read_messages(self, wait):
        import ray

        time.sleep(max(0.0, self._polled + POLL_SECONDS - time.monotonic()))
        self._polled = time.monotonic()
        names = list(self.actors)
        answers = [self.actors[name].poll.remote() for name in names]
        ready, _ = ray.wait(answers, num_returns=len(answers), timeout=10)
        for name, answer in zip(names, answers):
            if answer not in ready:
                continue  # an actor being started again by Ray: asked again next time
            try:
                messages, ended = ray.get(answer)
            except ray.exceptions.RayActorError:
                continue
            for message in messages:
                if message[0] == "state":  # restarts are the actor's to count
                    self.cameras[name].state.restarts = message[2].restarts
                self._handle(*message)
            self.cameras[name].done = ended

    def _check(self):
        pass  # Ray watches the actors' processes

    def _stop_all(self):
        import ray

        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)


def run_on_ray(site, address, verbose=False):
    """Run ``site``'s cameras as Ray actors at ``address`` until their sources end, or Ctrl-C; the exit status."""
    from mask_detector.parallel import connect_ray, require_ray

    require_ray(address)
    connect_ray(address, verbose)
    import ray

    supervisor = None
    try:
        supervisor = RaySupervisor(site)
        return supervisor.run()
    finally:
        if supervisor:
            supervisor._stop_all()  # before shutting Ray down, which would kill the actors loudly
        ray.shutdown()
