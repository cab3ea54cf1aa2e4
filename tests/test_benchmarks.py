"""The benchmark scripts run and print their tables (their figures are read by people, not asserted).

The tracking benchmark's own parts are checked here: the clips and their
truth, and the scorer's arithmetic on outputs built from that truth.
"""

import json
import re
import sys

import cv2
import pytest

from support.scripts import ROOT, run_script

sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_tracking  # noqa: E402
import make_clips  # noqa: E402


def test_pipeline_benchmark_prints_a_row_per_pipeline_and_frame(default_model):
    result = run_script("benchmarks/bench_pipeline.py", "--model", default_model, "--detect-size", 640,
                        "--rounds", 1, "--frames", 2)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if re.match(r"\| (classic|this project)", line)]
    assert len(rows) == 4
    faces = [int(row.split("|")[3]) for row in rows]
    assert faces == [1, 1, 9, 9]  # both pipelines find every face of both frames
    pose_ms = {row.split("|")[1].strip().split(",")[0] + row.split("|")[2]: float(row.split("|")[6]) for row in rows}
    assert pose_ms["classic (SSD + model.predict) 1 face "] == 0 and pose_ms["this project 9 faces "] > 0


def test_photo_benchmark_prints_a_row_per_run_and_compares_the_outputs(samples, default_model):
    result = run_script("benchmarks/bench_photos.py", "--images", samples[0].parent, "--few", 2, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| --")]
    assert [row.split("|")[1].strip() for row in rows] == ["--workers 1", "--workers 2", "--ray local"]
    assert all(row.split("|")[-2].strip() == "yes" for row in rows)


@pytest.fixture(scope="module")
def clip(voc_dev, tmp_path_factory):
    """One 6-second clip of three dev photos and its truth."""
    (path,) = make_clips.make_clips(voc_dev, tmp_path_factory.mktemp("clip"), clips=1, photos=3,
                                    seconds_per_photo=2, seed=1)
    return path, json.loads(make_clips.truth_path(path).read_text(encoding="utf-8"))


def test_clip_truth_matches_the_video(clip):
    path, truth = clip
    assert truth["fps"] == 25 and truth["frame_size"] == [640, 480]
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == len(truth["frames"]) > 100
    assert [f["frame"] for f in truth["frames"]] == list(range(frames))


def test_clip_truth_boxes_people_walker_and_drops(clip):
    _, truth = clip
    labels = {person["id"]: person["label"] for person in truth["people"]}
    assert len(labels) == len(truth["people"]) and set(labels.values()) <= {"mask", "no_mask", "incorrect"}
    faces = [face for frame in truth["frames"] for face in frame["faces"]]
    for face in faces:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 <= x2 <= 640 and 0 <= y1 <= y2 <= 480
        assert face["person"] in labels
    assert any(not face["visible"] for face in faces)  # the walker hid someone
    sides = [min(x2 - x1, y2 - y1) for x1, y1, x2, y2 in (face["box"] for face in faces)]
    assert 24 <= sorted(sides)[len(sides) // 2] <= 120  # zoomed to useful sizes
    sources = [frame["source_frame"] for frame in truth["frames"]]
    steps = [b - a for a, b in zip(sources, sources[1:])]
    assert min(steps) == 1 and max(steps) > 1  # dropped frames leave gaps
    assert all(frame["time"] == pytest.approx(frame["source_frame"] / 25) for frame in truth["frames"])


def test_clip_is_repeatable_from_its_seed(clip, voc_dev, tmp_path):
    (again,) = make_clips.make_clips(voc_dev, tmp_path, clips=1, photos=3, seconds_per_photo=2, seed=1)
    assert json.loads(make_clips.truth_path(again).read_text(encoding="utf-8")) == clip[1]


def write_output(path, truth, track_of, label_of):
    """The live script's JSON Lines for a tracker that reports every visible face as told."""
    people = {person["id"]: person["label"] for person in truth["people"]}
    true = bench_tracking.true_people(truth)
    with open(path, "w", encoding="utf-8") as file:
        for frame in truth["frames"]:
            faces = [{"box": face["box"], "detection_score": 0.9, "label": label_of(people[face["person"]]),
                      "mask_probability": 0.5, "track_id": track_of(face["person"], frame["frame"])}
                     for face in frame["faces"] if face["visible"]]
            file.write(json.dumps({"frame": frame["frame"], "time": frame["time"], "faces": faces}) + "\n")
        counts = {f"people_{label}": sum(label_of(value) == label for value in true.values())
                  for label in ("mask", "no_mask", "incorrect")}
        file.write(json.dumps({"summary": {"frames": len(truth["frames"]), "seconds": 1, "fps": 25,
                                           "people": len(true), **counts}}) + "\n")
    return bench_tracking.figures(bench_tracking.score_clip(truth, *bench_tracking.read_output(path)))


def test_score_of_perfect_tracks_is_one_everywhere(clip, tmp_path):
    truth = clip[1]
    result = write_output(tmp_path / "out.jsonl", truth, lambda person, frame: person, lambda label: label)
    assert result["true_people"] > 0
    for name in ("people_counted_per_true", "ids_per_person", "right_label", "flagged_per_violator",
                 "violators_caught"):
        assert result[name] == 1.0, name
    assert result["never_matched"] == 0 and result["mask_wearers_flagged"] == 0


def test_score_two_class_leaves_wrongly_worn_masks_out_of_right_label(clip, tmp_path):
    truth = clip[1]
    result = write_output(tmp_path / "out.jsonl", truth, lambda person, frame: person,
                          lambda label: "no_mask" if label == "incorrect" else label)
    assert result["right_label"] == 1.0
    assert result["wrongly_worn_flagged"] in (1.0, None)  # None: no such person in this clip


def test_score_counts_a_split_track_as_two_ids(clip, tmp_path):
    truth = clip[1]
    shown = {}  # person -> frames where visible
    for frame in truth["frames"]:
        for face in frame["faces"]:
            if face["visible"]:
                shown.setdefault(face["person"], []).append(frame["frame"])

    def split(person, frame):
        """Each person's track changes id halfway through the frames they are visible in."""
        return person * 2 + (frame >= shown[person][len(shown[person]) // 2])

    result = write_output(tmp_path / "out.jsonl", truth, split, lambda label: label)
    assert result["ids_per_person"] == 2.0
    assert result["right_label"] == 1.0


def test_score_of_wrong_labels_is_zero(clip, tmp_path):
    truth = clip[1]
    swap = {"mask": "no_mask", "no_mask": "mask", "incorrect": "mask"}
    result = write_output(tmp_path / "out.jsonl", truth, lambda person, frame: person, swap.get)
    assert result["right_label"] == 0.0
    assert result["violators_caught"] == 0.0 and result["ids_per_person"] == 1.0


def test_turning_benchmark_makes_its_clip_and_counts_the_live_scripts_people_and_alerts(voc_dev, default_model,
                                                                                         tmp_path):
    """bench_turning.py's clip: unmasked street faces the model never saw, given a mask worn right and turned
    from -75 to 75 degrees and back, a sweep each, with blank frames between them."""
    clip = tmp_path / "turning.avi"
    result = run_script("benchmarks/bench_turning.py", "--voc", voc_dev, "--people", 3, "--keep", clip)
    assert result.returncode == 0, result.stderr[-2000:]
    capture = cv2.VideoCapture(str(clip))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert frames == 3 * (50 + 30)
    table = dict(line.strip("|").split("|")[:2] for line in result.stdout.splitlines()
                 if line.startswith("| ") and not line.startswith("| measure"))
    table = {key.strip(): value.strip() for key, value in table.items()}
    assert table["people in the clip (mask worn right, yaw -75 to 75)"] == "3"
    assert 1 <= int(table["people counted"]) <= 6
    assert 0 <= int(table["mask wearers flagged (alerts)"]) <= int(table["people counted"])


def test_fit_looks_prints_the_fitted_likeness_beside_the_trackers():
    """fit_looks.py on a few faces of the training data's validation split: both rows, shares between 0 and 1,
    and the fitted value joins no more different pairs than asked (a third of them here, so it must show)."""
    result = run_script("benchmarks/fit_looks.py", "--faces", 30, "--wrong-joins", 0.34)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.strip("|").split("|") for line in result.stdout.splitlines() if re.match(r"\| -?\d", line)]
    assert [row[0].split("(")[1].strip(" )") for row in rows] == ["fitted", "tracking.LEAST_LIKENESS"]
    shares = [(float(row[1]), float(row[2])) for row in rows]
    assert all(0 <= same <= 1 and 0 <= different <= 1 for same, different in shares)
    assert shares[0][1] <= 0.34 and shares[0][0] > shares[0][1]  # a face is liker itself than others


def test_service_benchmark_prints_its_capacity_with_and_without_the_web_page_watched():
    result = run_script("benchmarks/bench_service.py", "--no-soak", "--cameras", 1, "--seconds", 3,
                        "--every-frame", "--web-browsers", 1, "--profile", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    profiles = [line for line in result.stdout.splitlines() if "| ms a frame: decode" in line]
    assert [line.split("|")[1].strip() for line in profiles] == ["motion on", "motion on, detect_every 1"]
    tables = result.stdout.split("capacity, ")[1:]
    assert len(tables) == 3 and "detect_every 1" in tables[1] and "browsers watching" in tables[2]
    assert "browsers" not in tables[0] + tables[1] and "detect_every" not in tables[0] + tables[2]
    for table in tables:
        row = next(line for line in table.splitlines() if line.startswith("| 1 |"))
        received, processed, dropped, unaccounted = (float(cell) for cell in row.split("|")[3:7])
        assert processed > 0 and unaccounted == received - processed - dropped
        cpu, memory, camera_memory = (cell.strip() for cell in row.split("|")[7:10])
        assert float(cpu.removesuffix(" ms")) > 0 and memory.endswith("MB") and camera_memory.endswith("MB")


def test_training_benchmark_prints_what_an_image_costs_in_each_step():
    result = run_script("benchmarks/bench_training.py", "--step-costs", "--image-size", 96, "--images", 64)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|")[1:4] for line in result.stdout.splitlines() if re.match(r"\| [a-z]", line)][1:]
    assert [(what.strip(), by.strip()) for what, by, _ in rows][::2] == [
        ("predict, whole model", "Keras"), ("layers no phase trains", "Keras"),
        ("fine-tuning step", "Keras, whole model"), ("fine-tuning step", "Keras above the copy alone")]
    assert all(float(ms) > 0 for _, _, ms in rows)
