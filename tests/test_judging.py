"""When a face's label is a flag: the judged size and probability from the model card, and a person's evidence."""

import json

import numpy as np

import pytest

from mask_detector import DEFAULT_MODEL
from mask_detector.classifier import card_path, read_card
from mask_detector.judging import PERSON_WEIGHT, POSE_BINS, Judging, judging_of
from mask_detector.pose import Pose
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
        assert rows[size]["masked_flagged"] <= rows[size]["most_false_alarms"]
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
    assert seen_small.label == "no_mask" and seen_small.weight < PERSON_WEIGHT
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


# Turn bins 0-15, 15-30, 30-45, 45-60, 60-90: judged to 45 degrees, more surely past 15; roll to 40.
POSED = Judging(((20, 0.8), (32, 0.6)), (("turn", (0.6, 0.7, 0.9, None, None)), ("roll", (0.6, 0.6, None))))


def test_a_face_turned_or_tilted_past_the_judged_poses_is_not_judged_and_says_why():
    large, small = (0, 0, 40, 40), (0, 0, 10, 10)
    sure, fairly = probabilities(0.05, 0.9, 0.05), probabilities(0.25, 0.7, 0.05)
    assert POSED.not_judged_because(large, sure, Pose(5, 0, 0)) is None
    assert POSED.not_judged_because(large, sure, Pose(-50, 0, 0)) == "turned"
    assert POSED.not_judged_because(large, sure, Pose(80, 0, 0)) == "turned"
    assert POSED.not_judged_because(large, sure, Pose(0, 50, 0)) == "tilted"  # looking down
    assert POSED.not_judged_because(large, sure, Pose(0, -50, 0)) == "tilted"  # looking up
    assert POSED.not_judged_because(large, sure, Pose(30, 30, 0)) is None  # turned 41 degrees, so judged ...
    assert POSED.not_judged_because(large, sure, Pose(40, 30, 0)) == "turned"  # ... but not 48 degrees
    assert POSED.not_judged_because(large, sure, Pose(0, 0, 45)) == "tilted"  # leaning on one side
    assert POSED.not_judged_because(large, sure, Pose(0, 0, 30)) is None
    assert POSED.not_judged_because(small, sure, Pose(80, 0, 0)) == "small"  # size is said first
    # A turned face needs a surer answer than a frontal one of its size, a frontal one only its size's.
    assert POSED.not_judged_because(large, fairly, Pose(20, 0, 0)) is None
    assert POSED.not_judged_because(large, fairly, Pose(35, 0, 0)) == "unsure"
    assert POSED.not_judged_because((0, 0, 24, 24), fairly, Pose(0, 0, 0)) == "unsure"
    # A mask is no flag: a turned masked face stands as long as its pose is judged at all.
    assert POSED.judged(large, probabilities(0.9, 0.05, 0.05), Pose(35, 0, 0))
    assert not POSED.judged(large, probabilities(0.9, 0.05, 0.05), Pose(55, 0, 0))
    # Without landmarks (the SSD) there is no pose, and only size counts.
    assert POSED.not_judged_because(large, sure, None) is None


def test_answers_about_turned_faces_weigh_as_little_as_those_about_tiny_ones():
    assert POSED.weight((0, 0, 64, 64), Pose(0, 0, 0)) == 1.0
    assert POSED.weight((0, 0, 64, 64), Pose(70, 0, 0)) == 0.1
    assert POSED.weight((0, 0, 64, 64), None) == 1.0


def test_an_answer_counts_fully_only_when_a_photo_would_judge_it():
    """A turned face's answer of a violation less sure than its pose calls for weighs as little as one about
    a face too turned to judge: only answers that a photo would stand by make a flag."""
    face = (0, 0, 64, 64)
    assert POSED.weight(face, Pose(35, 0, 0), probabilities(0.25, 0.7, 0.05)) == 0.1  # needs 0.9 when so turned
    assert POSED.weight(face, Pose(35, 0, 0), probabilities(0.03, 0.95, 0.02)) == 1.0
    assert POSED.weight(face, Pose(35, 0, 0), probabilities(0.9, 0.05, 0.05)) == 1.0  # a mask needs no more
    assert POSED.weight(face, Pose(5, 0, 0), probabilities(0.25, 0.7, 0.05)) == 1.0
    assert POSED.weight(face, Pose(70, 0, 0), probabilities(0.9, 0.05, 0.05)) == 0.1


def test_a_person_who_never_faces_the_camera_is_never_a_flag():
    profile = LabelVote(NAMES)
    for _ in range(60):
        profile.add([0.05, 0.05, 0.9], POSED.weight((0, 0, 80, 80), Pose(70, 0, 0)))
    assert profile.label == "incorrect" and not POSED.person_judged(profile, (0, 0, 80, 80))
    for _ in range(3):  # then looks at the camera: frontal evidence decides
        profile.add([0.05, 0.05, 0.9], POSED.weight((0, 0, 80, 80), Pose(5, 0, 0)))
    assert POSED.person_judged(profile, (0, 0, 80, 80))


def test_a_card_keeps_the_pose_bins_and_an_older_card_judges_by_size_alone():
    card = {"judging": {"flag_probabilities": {"20": 0.8, "32": 0.6},
                        "pose_probabilities": {"turn": [0.6, 0.7, 0.9, None, None], "roll": [0.6, 0.6, None]}}}
    assert judging_of(card) == POSED
    del card["judging"]["pose_probabilities"]
    assert judging_of(card) == Judging(((20, 0.8), (32, 0.6)))
    card["judging"]["pose_probabilities"] = {"turn": [0.5]}  # bins that do not fit POSE_BINS are not used
    assert judging_of(card).pose_probabilities == ()


def test_pose_bins_are_fitted_on_the_validation_split():
    """A bin with too few faces is not judged; a bin whose masked faces look like violations needs more."""
    from mask_detector.training import LEAST_FACES_PER_POSE_BIN, choose_judging

    rng = np.random.default_rng(0)
    count = 400
    truth = np.tile([0, 1], count // 2)
    turned = np.arange(count) % 8 >= 6  # a quarter, masked and not alike
    yaws = np.where(turned, rng.choice([-1, 1], count) * rng.uniform(31, 44, count), rng.uniform(-14, 14, count))
    probabilities_of = np.zeros((count, 3))
    probabilities_of[truth == 0] = [0.9, 0.08, 0.02]
    probabilities_of[truth == 1] = [0.05, 0.9, 0.05]
    # A tenth of the turned masked faces look like violations, up to 0.65 (too few to move the size's
    # probability, 2.5 % of all masked faces); every violation stays at 0.95.
    probabilities_of[turned & (truth == 0) & (np.arange(count) % 80 == 6)] = [0.35, 0.6, 0.05]
    by_size = {48: probabilities_of}
    poses = [Pose(yaw, 0.0, 0.0) for yaw in yaws]
    judging = judging_of({"judging": choose_judging(by_size, truth, NAMES, 128, poses)})
    by_bin = dict(judging.pose_probabilities)["turn"]
    assert by_bin[0] == 0.5 and by_bin[2] == 0.66  # 30-45: only answers surer than the masked faces' 0.65
    assert by_bin[1] is None and by_bin[3] is None and by_bin[4] is None  # no faces shown there
    assert len(POSE_BINS["turn"]) - 1 == len(by_bin) and LEAST_FACES_PER_POSE_BIN <= count // 8
