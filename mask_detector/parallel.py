"""A photo run in several processes, or on a Ray cluster: the same records, in the same order.

Each worker (a process, or a Ray actor) builds the pipeline once from its
pipeline.PipelineSettings and runs ``photos.detect_and_save`` on one photo at a time;
it writes the annotated copy itself and sends back the JSON record. The
records come back in input order, so the output is the same as in one process.
"""

import contextlib
import json
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from mask_detector.errors import UserError
from mask_detector.photos import detect_and_save
from mask_detector.pipeline import load_pipeline
from mask_detector.ray_cluster import connect_ray, user_error_in

# Photos an actor is handed at a time: 4 ran the 214 dev photos in 32 s against 37 s for 1 on two cores
# (less scheduling per photo); more would leave an actor idle at the end of a small run.
PHOTOS_PER_BATCH = 4


def detections(settings, jobs, show=False, workers=None, ray=None, verbose=False):
    """(path, record, image, results) for each photo in order, from wherever asked to run.

    ``settings`` is the pipeline's (pipeline.PipelineSettings); ``jobs`` are
    a photos.PhotoJob per photo; ``workers``
    the processes or Ray actors (None: one per core of this machine, or of
    the Ray cluster); ``ray`` a Ray address (see require_ray), or None to stay
    on this machine; ``verbose`` lets Ray show its own logs. A generator:
    closing it (after Ctrl-C, say) stops the workers, once the photos in flight are done.
    """
    processes = min(workers or os.cpu_count() or 1, len(jobs))
    if ray and jobs:
        records = on_ray(settings, jobs, ray, workers, verbose)
    elif show or processes < 2:
        pipeline = load_pipeline(settings) if jobs else None
        for job in jobs:
            yield job.path, *detect_and_save(pipeline, *job)
        return
    else:
        records = in_processes(settings, jobs, processes)
    with contextlib.closing(records):
        for record in records:
            yield Path(record["image"]), record, None, []


_pipeline = None  # a worker process's own, built once by _start_worker


def _start_worker(settings, threads, spoken):
    global _pipeline
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the main process decides
    # Every worker loads the same model: only the first says what it warns of (raw scores, say).
    with spoken.get_lock():
        first, spoken.value = not spoken.value, True
    with contextlib.nullcontext() if first else contextlib.redirect_stderr(open(os.devnull, "w")):
        _pipeline = _worker_pipeline(settings, threads)


def use_threads(threads):
    """This process computes with ``threads`` threads (OpenCV, TensorFlow, LiteRT): its share of the cores, when
    several processes share them. Call it before the pipeline is loaded."""
    import cv2

    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    cv2.setNumThreads(threads)


def _worker_pipeline(settings, threads):
    """A worker's pipeline, on its share of the cores so that N workers do not fight over them.

    Or the UserError that stopped it (a missing model, say), kept to be raised
    by each photo, so that the main process tells it as it would tell its own.
    """
    use_threads(threads)
    try:
        return load_pipeline(settings)
    except UserError as error:
        return error


def _worker_record(pipeline, path, copy, max_pixels, hide_faces):
    """One photo's JSON record from a worker's pipeline (see _worker_pipeline), its copy written."""
    if isinstance(pipeline, UserError):
        raise pipeline
    return detect_and_save(pipeline, path, copy, max_pixels, hide_faces)[0]


def _detect(job):
    return _worker_record(_pipeline, *job)


def in_processes(settings, jobs, workers):
    """The records of ``jobs`` from ``workers`` processes, in order."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: a forked TensorFlow or OpenCV thread pool can hang the child.
    context = get_context("spawn")
    pool = ProcessPoolExecutor(workers, context, initializer=_start_worker,
                               initargs=(settings, threads, context.Value("b", False)))
    try:
        yield from pool.map(_detect, jobs)
    finally:
        pool.shutdown(cancel_futures=True)  # after Ctrl-C, only the photos in flight are finished


class RayDetector:
    """A Ray actor's work: the pipeline built once, then a batch of photos at a time.

    ``run`` (the PipelineSettings, the driver's folder, threads) is set on a subclass
    made per run, so that it travels with the class, not as a separate object.
    """

    run = None

    def __init__(self):
        settings, folder, threads = self.run
        os.chdir(folder)  # the photos' paths are as the user gave them, from the driver's folder
        self.pipeline = _worker_pipeline(settings, threads)

    def __call__(self, batch):
        import numpy as np

        records = [
            json.dumps(_worker_record(self.pipeline, Path(path), Path(copy) if copy else None, int(limit), bool(hide)))
            for path, copy, limit, hide in zip(batch["path"], batch["copy"], batch["max_pixels"], batch["hide_faces"])
        ]
        return {"record": np.array(records, dtype=object)}


def on_ray(settings, jobs, address, workers, verbose=False):
    """The records of ``jobs`` from a pool of Ray actors (``workers``, or one per CPU of the cluster), in order
    (Ray Data keeps it)."""
    import ray.data  # binds ray too

    connect_ray(address, verbose)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # the script shows its own
        cpus = int(ray.cluster_resources().get("CPU", 1))  # an actor takes one: more would wait for ever
        workers = min(workers or cpus, cpus, len(jobs))
        items = [{"path": str(job.path), "copy": str(job.copy or ""), "max_pixels": job.max_pixels,
                  "hide_faces": job.hide_faces} for job in jobs]
        detector = type("Detector", (RayDetector,), {"run": (settings, os.getcwd(), 1)})
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), 10_000)).map_batches(
            detector, batch_size=PHOTOS_PER_BATCH, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
        )
        for row in dataset.iter_rows():
            yield json.loads(row["record"])
    except ray.exceptions.RayError as error:
        raise user_error_in(error) or error
    finally:
        ray.shutdown()
