"""Score face detection and mask classification on PASCAL VOC annotated photos.

Ground truth classes are ``with_mask``, ``without_mask`` and
``mask_weared_incorrect`` (here `mask`, `no_mask`, `incorrect`). Two sets
of figures:
- two-class (mask / no_mask), from each face's probability of `mask`: a
  face annotated `incorrect` counts for recall but is left out of these
  scores (a detection on it is neither right nor wrong);
- three-class, the usual figures on this photo set: VOC AP@0.5 for each of
  the three classes (no ignore regions), the 3x3 confusion of matched faces,
  and "violation" (no_mask or incorrect) precision / recall / F1. A
  two-class model never says `incorrect`, so its AP there is 0.

A face's size is the shorter side of its ground-truth box.
"""

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mask_detector.boxes import as_boxes, iou_matrix, longer_side
from mask_detector.errors import UserError
from mask_detector.judging import NOT_JUDGED_REASONS
from mask_detector.labels import CLASS_NAMES, LABEL_OF_NAME, THREE_CLASS_NAMES, VIOLATIONS, label_of, two_class

SIZE_BANDS = (("<16", 0, 16), ("16-32", 16, 32), (">=32", 32, float("inf")))
IOU_THRESHOLD = 0.5


@dataclass
class Annotation:
    image: Path
    boxes: np.ndarray  # (n, 4) x1, y1, x2, y2
    labels: list  # "mask", "no_mask" or "incorrect" (worn wrongly)

    @property
    def sizes(self):
        return np.minimum(self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1])


def load_voc(folder, report=None):
    """The Annotations of a VOC folder (annotations/*.xml, images/), each checked.

    A mistake in an annotation (not XML, an object without <bndbox>, a
    coordinate that is no number, a box with xmin >= xmax) is a UserError
    naming the file and the object. What is skipped (objects of classes it
    does not know, annotations without their image, images without an
    annotation) is told, with counts, through ``report`` (a function taking
    a line; None says nothing). A folder with no face of a known class is an error.
    """
    from collections import Counter

    folder = Path(folder)
    annotation_dir, image_dir = folder / "annotations", folder / "images"
    if not annotation_dir.is_dir() or not image_dir.is_dir():
        raise UserError(f"{folder} must hold annotations/ (VOC .xml) and images/")
    annotations, unknown, without_image, referenced = [], Counter(), [], set()
    for xml_path in sorted(annotation_dir.glob("*.xml")):
        root = _voc_root(xml_path)
        boxes, labels = [], []
        for number, item in enumerate(root.iter("object"), 1):
            name = (item.findtext("name") or "").strip()
            if name not in LABEL_OF_NAME:
                unknown[name or "(no name)"] += 1
                continue
            boxes.append(_voc_box(xml_path, f"object {number} ({name})", item))
            labels.append(LABEL_OF_NAME[name])
        filename = (root.findtext("filename") or "").strip() or xml_path.stem + ".jpg"
        image = image_dir / filename
        referenced.add(image.name)
        if image.is_file():
            annotations.append(Annotation(image, np.array(boxes, dtype=np.float32).reshape(-1, 4), labels))
        else:
            without_image.append(xml_path.name)
    if not annotations:
        raise UserError(f"no annotated images found in {folder}"
                        + (f" ({_counted(without_image, 'annotation')} without their image)" if without_image else ""))
    images = {p.name for p in image_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    without_annotation = sorted(images - referenced)
    known = ", ".join(LABEL_OF_NAME)
    skipped_objects = sum(unknown.values())
    if report and skipped_objects:
        kinds = ", ".join(f"{name} {count}" for name, count in unknown.most_common())
        report(f"note: {folder}: skipped {skipped_objects} object{'s' * (skipped_objects != 1)} of classes "
               f"it does not know ({kinds}); it knows {known}")
    if report and without_image:
        report(f"note: {folder}: skipped {_counted(without_image, 'annotation')} without their image in images/")
    if report and without_annotation:
        report(f"note: {folder}: skipped {_counted(without_annotation, 'image')} without an annotation")
    if not any(len(annotation.labels) for annotation in annotations):
        raise UserError(
            f"no usable face in {folder}: none of its objects is of a class it knows ({known})"
            + (f"; found {', '.join(f'{name} {count}' for name, count in unknown.most_common())}" if unknown else "")
        )
    return annotations


def _voc_root(xml_path):
    """The parsed root of a VOC annotation file, or a UserError that names the file and says what is wrong."""
    try:
        if xml_path.stat().st_size == 0:
            raise UserError(f"{xml_path}: the annotation file is empty")
        return ElementTree.parse(xml_path).getroot()
    except ElementTree.ParseError as error:
        raise UserError(f"{xml_path}: not valid XML, truncated or damaged ({error})") from None
    except OSError as error:
        raise UserError(f"cannot read {xml_path}: {error.strerror or error}") from None


def _voc_box(xml_path, what, item):
    """An object's [xmin, ymin, xmax, ymax], checked: numbers, and a box with an area."""
    box = item.find("bndbox")
    if box is None:
        raise UserError(f"{xml_path}: {what} has no <bndbox>")
    values = []
    for key in ("xmin", "ymin", "xmax", "ymax"):
        text = box.findtext(key)
        if text is None:
            raise UserError(f"{xml_path}: {what} has no <{key}> in its <bndbox>")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            raise UserError(f"{xml_path}: {what}: <{key}> is {text.strip()!r}, not a number")
        values.append(value)
    xmin, ymin, xmax, ymax = values
    for low, high, axis in ((xmin, xmax, "x"), (ymin, ymax, "y")):
        if low >= high:
            raise UserError(f"{xml_path}: {what}: {axis}min {low:g} is not less than {axis}max {high:g}")
    return values


def _counted(names, kind, shown=3):
    """'2 annotations (a.xml, b.xml)', with at most ``shown`` names."""
    listed = ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return f"{len(names)} {kind}{'s' * (len(names) != 1)} ({listed})"


def greedy_match(detected_boxes, scores, truth_boxes):
    """For each detection (best score first) the unclaimed truth box with IoU >= 0.5, or -1."""
    overlaps = iou_matrix(as_boxes(detected_boxes), truth_boxes)
    matched = np.full(len(scores), -1)
    taken = np.zeros(len(truth_boxes), dtype=bool)
    for d in np.argsort(-np.asarray(scores)):
        if overlaps.shape[1] == 0:
            break
        candidates = np.where(~taken, overlaps[d], -1)
        best = int(np.argmax(candidates))
        if candidates[best] >= IOU_THRESHOLD:
            matched[d] = best
            taken[best] = True
    return matched


def average_precision(scores, correct, positives):
    """VOC all-point interpolated AP from ranked detections."""
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64))
    hits = np.asarray(correct, dtype=np.float64)[order]
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    recall = true_positives / positives
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def binary_scores(truth, predicted, positive="no_mask", classes=CLASS_NAMES):
    """Accuracy, balanced accuracy (over ``classes``) and precision / recall / F1 of ``positive``."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if len(truth) == 0:
        return {"count": 0}
    tp = int(np.sum((predicted == positive) & (truth == positive)))
    fp = int(np.sum((predicted == positive) & (truth != positive)))
    fn = int(np.sum((predicted != positive) & (truth == positive)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    recalls = [np.mean(predicted[truth == c] == c) for c in classes if np.any(truth == c)]
    return {
        "count": int(len(truth)),
        "accuracy": float(np.mean(truth == predicted)),
        "balanced_accuracy": float(np.mean(recalls)),
        f"{positive}_precision": precision,
        f"{positive}_recall": recall,
        f"{positive}_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


@dataclass
class Detection:
    """One detected face, as the scores see it."""

    score: float
    mask_probability: float
    probabilities: dict  # every class the model knows
    truth_label: str  # the matched face's label, or "" for a detection of nothing
    size: float  # the matched face's size, or the detection's own when unmatched
    longer_side: float = 0.0  # the longer side of the matched face's box (of the detection's when unmatched)
    judged: bool = True  # the pipeline stands by its label (judging.Judging); only a judged face is a flag
    not_judged_because: str | None = None  # judging.NOT_JUDGED_REASONS
    yaw: float | None = None  # the face's yaw (pose.Pose), None without landmarks

    @property
    def flagged(self):
        """What a user sees as a violation: a judged face labelled no_mask or incorrect."""
        return self.judged and label_of(self.probabilities) in VIOLATIONS

    @property
    def ignored(self):
        """Left out of the two-class scores: a face with a mask worn wrongly is neither class."""
        return self.truth_label == "incorrect"


@dataclass
class Tally:
    """Everything gathered over the photos, turned into figures by ``summary``."""

    faces_by_band: dict = field(default_factory=lambda: {name: [0, 0] for name, _, _ in SIZE_BANDS})
    detections: list = field(default_factory=list)  # Detection per detected face
    positives: dict = field(default_factory=lambda: {(c, s): 0 for c in THREE_CLASS_NAMES for s in ("all", ">=32")})
    crops_truth: list = field(default_factory=list)
    crops_predicted: list = field(default_factory=list)


def band_of(size):
    return next(name for name, low, high in SIZE_BANDS if low <= size < high)


def tally_image(tally, annotation, results, crop_probabilities=None, crop_min_side=24):
    """Add one photo: ``results`` are FaceResult objects from the pipeline."""
    truth_sizes = annotation.sizes
    boxes = [r.box for r in results]
    scores = [r.detection_score for r in results]
    matched = greedy_match(boxes, scores, annotation.boxes)
    found = set(matched[matched >= 0].tolist())
    for index, size in enumerate(truth_sizes):
        counts = tally.faces_by_band[band_of(size)]
        counts[0] += 1
        counts[1] += index in found
        label = annotation.labels[index]
        tally.positives[(label, "all")] += 1
        tally.positives[(label, ">=32")] += size >= 32
    for result, truth_index in zip(results, matched):
        if truth_index >= 0:
            truth_label, size = annotation.labels[truth_index], float(truth_sizes[truth_index])
            longer = float(longer_side(annotation.boxes[truth_index]))
        else:
            x1, y1, x2, y2 = result.box
            truth_label, size, longer = "", float(min(x2 - x1, y2 - y1)), float(longer_side(result.box))
        tally.detections.append(Detection(result.detection_score, result.mask_probability, result.probabilities,
                                          truth_label, size, longer, result.judged, result.not_judged_because,
                                          None if result.pose is None else result.pose.yaw))
    if crop_probabilities is not None:
        for label, size, probability in zip(annotation.labels, truth_sizes, crop_probabilities):
            if label != "incorrect" and size >= crop_min_side and not np.isnan(probability):
                tally.crops_truth.append(label)
                tally.crops_predicted.append(label_of(two_class(probability)))


def summary(tally):
    figures = {"face_recall": {}}
    for name, (total, found) in tally.faces_by_band.items():
        figures["face_recall"][name] = {"faces": total, "recall": found / total if total else float("nan")}
    for subset, min_size in (("all", 0), (">=32", 32)):
        aps = {}
        for class_name in CLASS_NAMES:
            scores, correct = [], []
            for detection in tally.detections:
                if detection.ignored or detection.size < min_size:
                    continue  # faces outside the subset, and incorrectly worn masks, are not judged
                probability = two_class(detection.mask_probability)[class_name]
                scores.append(detection.score * probability)
                correct.append(detection.truth_label == class_name)
            aps[class_name] = average_precision(scores, correct, tally.positives[(class_name, subset)])
        figures[f"ap_{subset}"] = aps
        figures[f"map_{subset}"] = float(np.nanmean(list(aps.values())))
        matched = [d for d in tally.detections if d.truth_label and not d.ignored and d.size >= min_size]
        figures[f"matched_{subset}"] = binary_scores(
            [d.truth_label for d in matched], [label_of(two_class(d.mask_probability)) for d in matched]
        )
    small = [d for d in tally.detections if d.truth_label and not d.ignored and d.size < 32]
    figures["matched_<32"] = binary_scores(
        [d.truth_label for d in small], [label_of(two_class(d.mask_probability)) for d in small])
    if tally.crops_truth:
        figures["classifier_on_truth_boxes"] = binary_scores(tally.crops_truth, tally.crops_predicted)
    return figures | three_class_summary(tally) | flag_summary(tally)


# Faces are told apart by the longer side of their annotated box in the false-alarm figures ...
FLAG_BANDS = (("all", 0, float("inf")), ("<32", 0, 32), (">=32", 32, float("inf")))
# ... and by how far they are turned (the yaw's size, degrees; faces without landmarks are in neither).
YAW_BANDS = (("<30", 0, 30), (">=30", 30, 180))


def flag_summary(tally):
    """How often a flag is right, as a user meets flags: only judged faces labelled a violation count.

    - false alarms: the share of matched faces that wear a mask correctly and are flagged;
    - caught: the share of matched faces without a mask that are flagged;
    - violation precision / recall / F1 of the flags (an unjudged face is no flag);
    - the precision of `incorrect` flags, and the matched faces left unjudged.
    """
    matched = [d for d in tally.detections if d.truth_label]
    figures = {"false_alarms": {}, "flags": {}}
    for band, low, high in FLAG_BANDS:
        inside = [d for d in matched if low <= d.longer_side < high]
        figures["false_alarms"][band] = _false_alarms(inside)
        figures["flags"][band] = binary_scores(
            ["violation" if d.truth_label in VIOLATIONS else "ok" for d in inside],
            ["violation" if d.flagged else "ok" for d in inside], "violation", ("ok", "violation"),
        ) | {"caught": _caught(inside)}
    called_incorrect = [d for d in matched if d.flagged and label_of(d.probabilities) == "incorrect"]
    figures["incorrect_flag_precision"] = (sum(d.truth_label == "incorrect" for d in called_incorrect)
                                           / len(called_incorrect) if called_incorrect else float("nan"))
    figures["not_judged"] = {"matched_faces": len(matched), "not_judged": sum(not d.judged for d in matched),
                             "because": {reason: sum(d.not_judged_because == reason for d in matched)
                                         for reason in NOT_JUDGED_REASONS}}
    for band, low, high in YAW_BANDS:
        inside = [d for d in matched if d.yaw is not None and low <= abs(d.yaw) < high]
        figures["false_alarms"][f"yaw {band}"] = _false_alarms(inside)
        figures["flags"][f"yaw {band}"] = {"caught": _caught(inside)}
    return figures


def _false_alarms(detections):
    """Of these matched faces, the masked ones: how many, how many flagged, and how many judged."""
    masked = [d for d in detections if d.truth_label == "mask"]
    flagged, judged = sum(d.flagged for d in masked), sum(d.judged for d in masked)
    return {"masked_faces": len(masked), "flagged": flagged,
            "share": flagged / len(masked) if masked else float("nan"),
            "judged": judged, "share_of_judged": flagged / judged if judged else float("nan")}


def _caught(detections):
    """The share of these matched faces without a mask that are flagged."""
    unmasked = [d for d in detections if d.truth_label == "no_mask"]
    return sum(d.flagged for d in unmasked) / len(unmasked) if unmasked else float("nan")


def three_class_summary(tally):
    """AP@0.5 per class and its mean, the confusion of matched faces, and violation scores."""
    figures = {}
    for subset, min_size in (("all", 0), (">=32", 32)):
        judged = [d for d in tally.detections if d.size >= min_size]
        aps = {}
        for class_name in THREE_CLASS_NAMES:
            # A class the model does not know is never predicted: its AP is 0, not a ranking of zeros.
            known = [d for d in judged if class_name in d.probabilities]
            scores = [d.score * d.probabilities[class_name] for d in known]
            correct = [d.truth_label == class_name for d in known]
            aps[class_name] = average_precision(scores, correct, tally.positives[(class_name, subset)])
        figures[f"ap3_{subset}"] = aps
        figures[f"map3_{subset}"] = float(np.nanmean(list(aps.values())))
        matched = [d for d in judged if d.truth_label]
        truth = ["violation" if d.truth_label in VIOLATIONS else "ok" for d in matched]
        predicted = ["violation" if label_of(d.probabilities) in VIOLATIONS else "ok" for d in matched]
        figures[f"violation_{subset}"] = binary_scores(truth, predicted, "violation", ("ok", "violation"))
        figures[f"confusion_{subset}"] = {
            truth_name: {name: sum(d.truth_label == truth_name and label_of(d.probabilities) == name
                                   for d in matched) for name in THREE_CLASS_NAMES}
            for truth_name in THREE_CLASS_NAMES
        }
    return figures


def format_table(figures):
    """The evaluation as a Markdown table, the same rows the README shows."""
    recall = figures["face_recall"]
    rows = [
        ("face recall, faces >= 32 px", recall[">=32"]["recall"]),
        ("face recall, faces 16-32 px", recall["16-32"]["recall"]),
        ("face recall, faces < 16 px", recall["<16"]["recall"]),
        ("mAP@0.5 (mask, no_mask), all faces", figures["map_all"]),
        ("mAP@0.5, faces >= 32 px", figures["map_>=32"]),
        ("AP mask / no_mask, all faces", "{:.3f} / {:.3f}".format(*figures["ap_all"].values())),
        ("accuracy, matched faces >= 32 px", figures["matched_>=32"].get("accuracy", float("nan"))),
        ("`no_mask` F1, matched faces >= 32 px", figures["matched_>=32"].get("no_mask_f1", float("nan"))),
        ("`no_mask` recall, matched faces < 32 px", figures["matched_<32"].get("no_mask_recall", float("nan"))),
        ("three-class mAP@0.5 (mask, no_mask, incorrect), all faces", figures["map3_all"]),
        ("AP mask / no_mask / incorrect, all faces", "{:.3f} / {:.3f} / {:.3f}".format(*figures["ap3_all"].values())),
        ("violation F1, matched faces", figures["violation_all"].get("violation_f1", float("nan"))),
        ("violation F1, matched faces >= 32 px", figures["violation_>=32"].get("violation_f1", float("nan"))),
    ]
    if "false_alarms" in figures:  # figures stored in a card before faces were judged have none
        alarms, flags, unjudged = figures["false_alarms"], figures["flags"], figures["not_judged"]
        rows += [
            ("false alarms: matched masked faces flagged, all sizes", _share(alarms["all"])),
            ("false alarms: matched masked faces flagged, < 32 px (longer side)", _share(alarms["<32"])),
            ("false alarms: matched masked faces flagged, >= 32 px (longer side)", _share(alarms[">=32"])),
            ("matched unmasked faces flagged (caught)", flags["all"]["caught"]),
            ("flag F1 (a judged no_mask or incorrect), all / >= 32 px",
             "{:.3f} / {:.3f}".format(flags["all"].get("violation_f1", float("nan")),
                                      flags[">=32"].get("violation_f1", float("nan")))),
            ("precision of `incorrect` flags", figures["incorrect_flag_precision"]),
            ("matched faces not judged",
             f"{unjudged['not_judged']} of {unjudged['matched_faces']}"
             f" ({unjudged['not_judged'] / max(unjudged['matched_faces'], 1):.1%})"
             + (": " + ", ".join(f"{count} {reason}" for reason, count in unjudged["because"].items())
                if "because" in unjudged else "")),
        ]
        for band, _, _ in YAW_BANDS:
            if f"yaw {band}" in alarms:
                rows += [(f"false alarms: matched masked faces flagged, turned {band} degrees",
                          _share(alarms[f"yaw {band}"])),
                         (f"matched unmasked faces flagged (caught), turned {band} degrees",
                          flags[f"yaw {band}"]["caught"])]
    crops = figures.get("classifier_on_truth_boxes")
    if crops:
        rows += [
            ("classifier on true boxes >= 24 px: accuracy", crops["accuracy"]),
            ("classifier on true boxes >= 24 px: balanced accuracy", crops["balanced_accuracy"]),
            ("classifier on true boxes >= 24 px: `no_mask` precision", crops["no_mask_precision"]),
            ("classifier on true boxes >= 24 px: `no_mask` F1", crops["no_mask_f1"]),
        ]
    lines = ["| measure | value |", "|---|---|"]
    for name, value in rows:
        lines.append(f"| {name} | {value if isinstance(value, str) else f'{value:.3f}'} |")
    lines += ["", "Matched faces (rows: annotated, columns: predicted):", "",
              "| | " + " | ".join(THREE_CLASS_NAMES) + " |", "|---|---|---|---|"]
    for truth_name, row in figures["confusion_all"].items():
        lines.append(f"| {truth_name} | " + " | ".join(str(row[name]) for name in THREE_CLASS_NAMES) + " |")
    return "\n".join(lines)


def _share(counts):
    return (f"{counts['share']:.1%} ({counts['flagged']} of {counts['masked_faces']}; "
            f"{counts['share_of_judged']:.1%} of the {counts['judged']} judged)")


def evaluate(pipeline, annotations, report=None):
    """Run ``pipeline`` on every annotated photo, and its classifier on the true boxes; the figures.

    ``report`` (if given) is called with a progress line every 50 photos.
    """
    from mask_detector.classifier import crop_faces
    from mask_detector.files import read_image

    tally = Tally()
    classifier = pipeline.classifier
    for number, annotation in enumerate(annotations, 1):
        image = read_image(annotation.image)
        crops = crop_faces(image, annotation.boxes.astype(int), classifier.input_size)
        tally_image(tally, annotation, pipeline(image), classifier.predict(crops))
        if report and number % 50 == 0:
            report(f"{number}/{len(annotations)} photos")
    return summary(tally) | {"photos": len(annotations)}
