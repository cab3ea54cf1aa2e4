"""How well the live script follows people: its tracks scored against clips with known faces.

    python benchmarks/bench_tracking.py                    # the live script, 3 clips of 12 dev photos
    python benchmarks/bench_tracking.py --baseline         # and the plain IoU tracker beside it
    python benchmarks/bench_tracking.py --baseline-only --clips 1 --photos 4

Makes clips with make_clips.py (pans and zooms across annotated photos, with
shake, dropped frames, motion blur, a walker hiding faces, dimming light),
runs `detect_mask_video.py --source CLIP --no-display --json OUT` on each
(plus `--script-args`), and scores its JSON Lines output against the truth.

Scoring
- True people: persons visible (not hidden by the walker) with a box whose
  shorter side is >= 20 px in at least 10 frames. Smaller or briefer faces
  are never detectable, so no tracker is asked for them.
- Matching: in each frame the script reports, its faces are paired with the
  visible true faces, best IoU first, each used once, IoU >= 0.3 (loose:
  detectors frame a face differently from annotators). Frames are aligned by
  index in the clip, which is what the script's "frame" counts.
- people counted / true people: the summary's "people" over the true people.
- ids per person: over true people matched at least once, the mean number of
  distinct track ids matched to them (1.0 is perfect); "never matched" is the
  share of true people no reported face ever matched.
- Why people are counted too often (the script's counted tracks are those of
  its person events; the baseline's, its tracks of >= 10 frames): split
  tracks, a true person's second and later counted tracks, per true person;
  counted tracks that matched no annotated face, and counted glimpses (tracks
  that matched only faces too brief or too small to be true people), each as
  a share of the people counted.
- right label: over true people matched at least once, the share whose label
  (the one the script gave the track in the last frame that matched them)
  equals the truth (a label still undecided there, null, is not right). A
  mask worn wrongly has no right answer for a two-class model: those people
  are left out and reported apart (share flagged). If the output ever says
  "incorrect", the model is taken as three-class and they count like the
  others.
- flagged / true violators: the summary's people_no_mask + people_incorrect
  over true people without a mask or wearing it wrongly. "violators caught"
  is the matched version: the share of true violators whose last matched
  track ended (its last reported frame) labelled no_mask or incorrect and
  lasted at least 10 frames. "mask wearers flagged" is the same for true
  mask wearers: false alarms, also split by the person's face size (the
  longer side of their largest visible box, < 32 px and >= 32 px). A face
  the script did not judge ("judged": false) is no flag.

Totals pool the counts of all clips. `--baseline` also scores the plain
IoU-overlap tracker (link to the previous frame's box at IoU >=
0.3, average the mask probability over the track's last 15 frames, count
tracks of >= 10 frames) running the project's pipeline on the same clips.
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from make_clips import make_clips, truth_path  # noqa: E402
from mask_detector.boxes import as_boxes, greedy_pairs, iou_matrix  # noqa: E402
from mask_detector.cli import at_least  # noqa: E402
from mask_detector.errors import UserError, run_cli  # noqa: E402
from mask_detector.labels import label_of, two_class  # noqa: E402

LEAST_IOU = 0.3
MIN_FRAMES = 10  # a true person, a counted track
MIN_SIDE = 20
AVERAGE_FRAMES = 15  # the baseline's label window
FLAGGED = ("no_mask", "incorrect")


def pairs_by_iou(boxes, others, least_iou=LEAST_IOU):
    """(i, j) pairs of boxes[i] with others[j], best IoU first, each box in one pair, IoU >= least_iou."""
    return greedy_pairs(iou_matrix(as_boxes(boxes), as_boxes(others)), least_iou)


def read_output(path):
    """The script's JSON Lines: ({frame index: faces}, summary)."""
    frames, summary = {}, None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if "summary" in record:
                summary = record["summary"]
            else:
                frames[record["frame"]] = record["faces"]
    if summary is None:
        raise ValueError(f"{path} has no summary line")
    return frames, summary


def true_people(truth):
    """Person id -> label for the people a tracker is asked to follow (see the module's docstring)."""
    seen = Counter(
        face["person"]
        for frame in truth["frames"]
        for face in frame["faces"]
        if face["visible"] and min(face["box"][2] - face["box"][0], face["box"][3] - face["box"][1]) >= MIN_SIDE
    )
    return {person["id"]: person["label"] for person in truth["people"] if seen[person["id"]] >= MIN_FRAMES}


def score_clip(truth, frames, summary, counted=None):
    """Counts for one clip (they add up over clips; ``figures`` turns them into ratios). ``counted``: the track
    ids counted as people (the script's person events); None: the tracks reported in MIN_FRAMES frames or more."""
    people = true_people(truth)
    tracks, labels = {}, set()  # track id -> (frames reported, label in the last of them); every label given
    for index in sorted(frames):
        for face in frames[index]:
            # A face the script did not judge shows no flag: its label counts as no violation.
            label = face["label"] if face.get("judged", True) else None
            tracks[face["track_id"]] = (tracks.get(face["track_id"], (0, None))[0] + 1, label)
            labels.add(face["label"])
    ids, last = defaultdict(set), {}  # person -> track ids; person -> (track id, label) when last matched
    faces_of = defaultdict(set)  # track id -> every annotated person its faces matched, true people or not
    for truth_frame in truth["frames"]:
        reported = frames.get(truth_frame["frame"], [])
        shown = [face for face in truth_frame["faces"] if face["visible"]]
        # Matched against every visible face, so a detection of a tiny face is not pinned on a neighbour.
        for i, j in pairs_by_iou([face["box"] for face in reported], [face["box"] for face in shown]):
            person = shown[j]["person"]
            faces_of[reported[i]["track_id"]].add(person)
            if person in people:
                ids[person].add(reported[i]["track_id"])
                last[person] = (reported[i]["track_id"], reported[i]["label"])
    judged = [p for p in last if "incorrect" in labels or people[p] != "incorrect"]
    wrongly_worn = [p for p in last if people[p] == "incorrect"]

    def ended_flagged(person):
        if person not in last:
            return False
        length, label = tracks[last[person][0]]
        return label in FLAGGED and length >= MIN_FRAMES

    violators = [p for p, label in people.items() if label in FLAGGED]
    wearers = [p for p, label in people.items() if label == "mask"]
    largest = largest_sides(truth)
    small_wearers = [p for p in wearers if largest[p] < 32]
    large_wearers = [p for p in wearers if largest[p] >= 32]
    if counted is None:
        counted = {track for track, (length, _) in tracks.items() if length >= MIN_FRAMES}
    return {
        "true_people": len(people),
        "people_counted": summary["people"],
        **miscounts(people, ids, faces_of, counted),
        "matched": len(last),
        "ids": sum(len(ids[p]) for p in last),
        "labels_judged": len(judged),
        "labels_right": sum(last[p][1] == people[p] for p in judged),
        "wrongly_worn_matched": len(wrongly_worn),
        "wrongly_worn_flagged": sum(last[p][1] in FLAGGED for p in wrongly_worn),
        "violators": len(violators),
        "flagged": summary["people_no_mask"] + summary.get("people_incorrect", 0),
        "violators_caught": sum(ended_flagged(p) for p in violators),
        "mask_wearers": len(wearers),
        "mask_wearers_flagged": sum(ended_flagged(p) for p in wearers),
        "small_mask_wearers": len(small_wearers),
        "small_mask_wearers_flagged": sum(ended_flagged(p) for p in small_wearers),
        "large_mask_wearers": len(large_wearers),
        "large_mask_wearers_flagged": sum(ended_flagged(p) for p in large_wearers),
    }


def largest_sides(truth):
    """Person -> the longer side of their largest visible box."""
    largest = Counter()
    for truth_frame in truth["frames"]:
        for face in truth_frame["faces"]:
            if face["visible"]:
                x1, y1, x2, y2 = face["box"]
                largest[face["person"]] = max(largest[face["person"]], x2 - x1, y2 - y1)
    return largest


def miscounts(people, ids, faces_of, counted):
    """Why people are counted more than once: a true person's second and later counted tracks; counted tracks
    that matched no annotated face; counted tracks that matched only faces too brief or too small to be true
    people (glimpses). ``ids``: true person -> track ids; ``faces_of``: track id -> annotated people matched."""
    return {
        "split_tracks": sum(max(0, len(ids[p] & counted) - 1) for p in people),
        "counted_no_face": sum(not faces_of[track] for track in counted),
        "counted_glimpses": sum(bool(faces_of[track]) and not faces_of[track] & people.keys() for track in counted),
    }


def figures(counts):
    """The ratios of the table from (summed) counts; None where there is nothing to divide by."""

    def ratio(part, whole):
        return round(part / whole, 3) if whole else None

    return {
        "true_people": counts["true_people"],
        "people_counted_per_true": ratio(counts["people_counted"], counts["true_people"]),
        "ids_per_person": ratio(counts["ids"], counts["matched"]),
        "splits_per_person": ratio(counts["split_tracks"], counts["true_people"]),
        "counted_no_face": ratio(counts["counted_no_face"], counts["people_counted"]),
        "counted_glimpses": ratio(counts["counted_glimpses"], counts["people_counted"]),
        "never_matched": ratio(counts["true_people"] - counts["matched"], counts["true_people"]),
        "right_label": ratio(counts["labels_right"], counts["labels_judged"]),
        "flagged_per_violator": ratio(counts["flagged"], counts["violators"]),
        "violators_caught": ratio(counts["violators_caught"], counts["violators"]),
        "mask_wearers_flagged": ratio(counts["mask_wearers_flagged"], counts["mask_wearers"]),
        "small_mask_wearers_flagged": ratio(counts["small_mask_wearers_flagged"], counts["small_mask_wearers"]),
        "large_mask_wearers_flagged": ratio(counts["large_mask_wearers_flagged"], counts["large_mask_wearers"]),
        "wrongly_worn_flagged": ratio(counts["wrongly_worn_flagged"], counts["wrongly_worn_matched"]),
    }


@dataclass
class Track:
    frames: int = 0
    probabilities: deque = field(default_factory=lambda: deque(maxlen=AVERAGE_FRAMES))
    label: str = ""


class IouTracker:
    """The plain tracker to measure against: no memory beyond the previous frame.

    A face takes the track of the previous frame's face it overlaps most (IoU
    >= 0.3); a face missed for one frame starts a new track when it returns.
    """

    def __init__(self):
        self.previous = []  # (box, track id) of the last frame
        self.tracks = {}

    def update(self, results):
        """One frame's FaceResults -> its faces in the script's JSON form, with track ids and averaged labels."""
        links = dict(pairs_by_iou([r.box for r in results], [box for box, _ in self.previous]))
        faces, current = [], []
        for index, result in enumerate(results):
            track_id = self.previous[links[index]][1] if index in links else len(self.tracks)
            track = self.tracks.setdefault(track_id, Track())
            track.frames += 1
            track.probabilities.append(result.mask_probability)
            probability = float(np.mean(track.probabilities))
            track.label = label_of(two_class(probability))
            faces.append(result.to_json() | {
                "label": track.label, "mask_probability": round(probability, 4), "track_id": track_id})
            current.append((result.box, track_id))
        self.previous = current
        return faces

    def counts(self):
        people = Counter(track.label for track in self.tracks.values() if track.frames >= MIN_FRAMES)
        return {"people": sum(people.values()), "people_mask": people["mask"], "people_no_mask": people["no_mask"],
                "people_incorrect": people["incorrect"]}


def run_baseline(pipeline, clip, output):
    """The IoU tracker on every frame of ``clip``, written to ``output`` in the script's JSON Lines format."""
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    tracker, index, started = IouTracker(), 0, time.perf_counter()
    with open(output, "w", encoding="utf-8") as file:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            faces = tracker.update(pipeline(frame))
            file.write(json.dumps({"frame": index, "time": round(index / fps, 3), "faces": faces}) + "\n")
            index += 1
        seconds = time.perf_counter() - started
        summary = {"frames": index, "seconds": round(seconds, 2), "fps": round(index / max(seconds, 1e-9), 1)}
        file.write(json.dumps({"summary": summary | tracker.counts()}) + "\n")
    capture.release()


def run_script(clip, output, script_args):
    """The live script on ``clip``, its frames to ``output``; the track ids it counted as people (its events)."""
    events = output.with_suffix(".events.jsonl")
    events.unlink(missing_ok=True)
    command = [sys.executable, str(ROOT / "detect_mask_video.py"), "--source", str(clip), "--no-display",
               "--json", str(output), "--events", str(events), *script_args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"the live script failed on {clip.name}: {result.stderr.strip()[-500:]}")
    lines = events.read_text(encoding="utf-8").splitlines() if events.exists() else []
    return {event["track_id"] for event in map(json.loads, lines) if event["event"] == "person"}


def format_table(rows):
    """Markdown: one row per (tracker, clip) with its figures."""

    def show(value):
        return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    columns = ("true_people", "people_counted_per_true", "ids_per_person", "splits_per_person", "counted_no_face",
               "counted_glimpses", "never_matched", "right_label", "flagged_per_violator", "violators_caught",
               "mask_wearers_flagged", "small_mask_wearers_flagged", "large_mask_wearers_flagged",
               "wrongly_worn_flagged")
    lines = ["| tracker | clip | true people | people counted / true | ids per person | split tracks counted / true "
             "| counted, matching no face / counted | counted glimpses / counted | never matched "
             "| right label | flagged / true violators | violators caught | false alarms: mask wearers flagged "
             "| of them < 32 px | >= 32 px | worn wrongly, flagged |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for tracker, clip, values in rows:
        lines.append(f"| {tracker} | {clip} | " + " | ".join(show(values[c]) for c in columns) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", type=Path, default=ROOT / "evaluation" / "facemask_voc_dev",
                        help="annotated photos, a VOC folder (default: the dev photos)")
    parser.add_argument("--clips", type=at_least(1), default=3)
    parser.add_argument("--photos", type=at_least(1), default=12, help="photos per clip")
    parser.add_argument("--seconds-per-photo", type=at_least(1.0, float), default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--script-args", default="", help='more flags for the live script, e.g. "--model M"')
    parser.add_argument("--baseline", action="store_true", help="also score the plain IoU tracker")
    parser.add_argument("--baseline-only", action="store_true", help="score only the plain IoU tracker")
    parser.add_argument("--model", help="the baseline's classifier (default: the float16 .tflite, else the .h5)")
    parser.add_argument("--keep", help="make the clips and outputs in this folder and keep them")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        clips = make_clips(args.voc, folder, args.clips, args.photos, args.seconds_per_photo, args.seed)
        trackers = [] if args.baseline_only else ["script"]
        if args.baseline or args.baseline_only:
            trackers.append("baseline")
        pipeline = None
        if "baseline" in trackers:
            from mask_detector.pipeline import LIVE, MaskPipeline

            pipeline = MaskPipeline(replace(LIVE, model=args.model or ""))
        rows, report = [], {"clips": [], "totals": {}}
        for tracker in trackers:
            total = Counter()
            for clip in clips:
                output = folder / f"{clip.stem}.{tracker}.jsonl"
                print(f"{tracker}: {clip.name}", file=sys.stderr, flush=True)
                counted = None  # the baseline counts its tracks of MIN_FRAMES frames
                if tracker == "baseline":
                    run_baseline(pipeline, clip, output)
                else:
                    counted = run_script(clip, output, shlex.split(args.script_args))
                truth = json.loads(truth_path(clip).read_text(encoding="utf-8"))
                frames, summary = read_output(output)
                counts = score_clip(truth, frames, summary, counted)
                total.update(counts)
                rows.append((tracker, clip.stem, figures(counts)))
                report["clips"].append({"tracker": tracker, "clip": clip.stem, "fps": summary.get("fps"),
                                        "counts": counts, "figures": figures(counts)})
            rows.append((tracker, "**all**", figures(total)))
            report["totals"][tracker] = {"counts": dict(total), "figures": figures(total)}
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    run_cli(main)
