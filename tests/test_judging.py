"""When a face's label is a flag: the judged size and probability from the model card, and a person's evidence."""

import json

import numpy as np

import pytest

from mask_detector import DEFAULT_MODEL
from mask_detector.classifier import card_path, read_card
from mask_detector.judging import PERSON_EVIDENCE, Judging, judging_of
from mask_detector.tracking import LabelVote

NAMES = ("mask", "no_mask", "incorrect")


def probabilities(mask, no_mask, incorrect):
    return dict(zip(NAMES, (mask, no_mask, incorrect)))


def test_a_face_is_judged_when_large_enough_and_sure_enough_of_a_violation():
    judging = Judging(((20, 0.9), (32, 0.7)))
    large, middling, small = (0, 0, 30, 36), (0, 0, 20, 24), (0, 0, 12, 15)
    assert judging.min_face_size == 20
    assert [judging.flag_probability(box) for box in (large, middling, small)] == [0.7, 0.9, None]
    assert judging.judged(large, probabilities(0.9, 0.05, 0.05))
    assert judging.judged(large, probabilities(0.1, 0.8, 0.1))
    assert not judging.judged(large, probabilities(0.35, 0.45, 0.2))  # likeliest no_mask, but violations only 0.65
    assert not judging.judged(middling, probabilities(0.15, 0.8, 0.05))  # a smaller face needs more
    assert judging.judged(middling, probabilities(0.05, 0.9, 0.05))
    assert not judging.judged(small, probabilities(0.01, 0.98, 0.01))  # too small, however sure
    assert not judging.judged(small, probabilities(0.98, 0.01, 0.01))


def test_without_a_card_every_face_is_judged_by_its_likeliest_class(tmp_path):
    model = tmp_path / "model.h5"
    assert judging_of(read_card(model)) == Judging()
    assert Judging().judged((0, 0, 5, 5), probabilities(0.3, 0.4, 0.3))
    (tmp_path / "model.json").write_text("{not json")
    assert judging_of(read_card(model)) == Judging()


def test_the_litert_copies_share_the_card_of_their_model(tmp_path):
    assert card_path(tmp_path / "mask_detector_float16.tflite") == tmp_path / "mask_detector.json"
    assert card_path(tmp_path / "mask_detector_int8.tflite") == tmp_path / "mask_detector.json"
    card = {"judging": {"min_face_size": 18, "flag_probabilities": {"24": 0.6, "18": 0.8}}}
    (tmp_path / "mask_detector.json").write_text(json.dumps(card))
    assert judging_of(read_card(tmp_path / "mask_detector_float16.tflite")) == Judging(((18, 0.8), (24, 0.6)))


def test_the_shipped_model_keeps_its_judging_chosen_on_the_validation_split():
    card = json.loads(card_path(DEFAULT_MODEL).read_text())
    judging = judging_of(card)
    assert judging.min_face_size == card["judging"]["min_face_size"] and 0 < judging.min_face_size <= 48
    assert all(0.5 <= probability < 1 for _, probability in judging.flag_probabilities)
    rows = {row["face_size"]: row for row in card["judging"]["by_face_size"]}
    for size, probability in judging.flag_probabilities:  # each judged size keeps to the false alarms allowed
        assert rows[size]["flag_probability"] == probability
        assert rows[size]["masked_flagged"] <= card["judging"]["most_false_alarms"]
        assert rows[size]["violations_flagged"] >= card["judging"]["least_caught"]
    assert card["calibration"]["temperature"] > 0


def test_answers_about_larger_faces_weigh_more():
    judging = Judging(((16, 0.8),))
    assert judging.weight((0, 0, 8, 8)) == 0.1
    assert judging.weight((0, 0, 10, 16)) == pytest.approx(0.5)
    assert judging.weight((0, 0, 24, 20)) == pytest.approx(0.75)
    assert judging.weight((0, 0, 40, 40)) == 1.0
    assert judging.weight((0, 0, 1, 1)) == 0.1
    assert Judging().weight((0, 0, 1, 1)) == 1.0


def test_a_person_is_flagged_only_on_enough_evidence():
    judging = Judging(((16, 0.7),))
    seen_small, seen_well = LabelVote(NAMES), LabelVote(NAMES)
    for _ in range(30):  # a far-away face, however often it is asked about, never raises a flag
        seen_small.add([0.05, 0.9, 0.05], judging.weight((0, 0, 10, 10)))
    assert seen_small.label == "no_mask" and seen_small.evidence < PERSON_EVIDENCE
    assert not judging.person_judged(seen_small, (0, 0, 10, 10))
    for _ in range(3):
        seen_well.add([0.05, 0.9, 0.05], judging.weight((0, 0, 40, 40)))
    assert judging.person_judged(seen_well, (0, 0, 40, 40))
    assert judging.person_judged(seen_well, (0, 0, 10, 10))  # seen well before, small now: still stands
    unsure = LabelVote(NAMES)
    for _ in range(5):
        unsure.add([0.4, 0.45, 0.15], 1.0)
    assert unsure.label == "no_mask" and not judging.person_judged(unsure, (0, 0, 40, 40))


def test_answers_are_plain_booleans_that_json_can_write():
    """numpy's bool is no JSON: the events and JSON lines write these as they are."""
    judging = Judging(((16, 0.7),))
    vote = LabelVote(NAMES)
    for _ in range(3):
        vote.add([0.05, 0.9, 0.05])
    answers = [judging.judged((0, 0, 40, 40), dict(zip(NAMES, map(np.float32, (0.1, 0.8, 0.1))))),
               judging.person_judged(vote, (0, 0, 40, 40))]
    assert json.dumps(answers) == "[true, true]"
