"""mask_detector/counts.py: people by final label, their total and compliance, and their JSON."""

from mask_detector.counts import PeopleCounts


def test_people_are_counted_by_label_and_compliance_leaves_out_those_not_judged():
    counts = PeopleCounts()
    for label in ("mask", "mask", "mask", "no_mask", "incorrect", None, None):
        counts.add(label)
    assert counts == PeopleCounts(mask=3, no_mask=1, incorrect=1, not_judged=2)
    assert counts.total == 7 and counts.compliance == 3 / 5
    assert PeopleCounts(not_judged=4).compliance is None


def test_the_json_of_a_two_class_model_has_no_incorrect():
    counts = PeopleCounts(mask=2, no_mask=1, not_judged=1)
    assert counts.to_json() == {"people": 4, "people_mask": 2, "people_no_mask": 1, "people_incorrect": 0,
                                "people_not_judged": 1}
    assert counts.to_json(("mask", "no_mask")) == {"people": 4, "people_mask": 2, "people_no_mask": 1,
                                                   "people_not_judged": 1}


def test_counts_of_two_periods_add_and_subtract():
    before, now = PeopleCounts(mask=2, no_mask=1), PeopleCounts(mask=5, no_mask=1, not_judged=2)
    assert now - before == PeopleCounts(mask=3, not_judged=2)
    assert before + (now - before) == now
    assert before == PeopleCounts(mask=2, no_mask=1)  # neither is changed
