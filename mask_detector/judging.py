"""When a face's label is a flag: the evidence a face must show before it is called a violation.

A flag ("No mask", "Mask worn wrongly", an alert) is what people act on, so it
needs a face large enough to judge and an answer sure enough for its size: a
small face is judged only when the model is very sure. Both are chosen on the
validation split when the model is trained (training.choose_judging) and kept
in its card; a model without them judges every face by its likeliest class.
"""

from dataclasses import dataclass

from mask_detector.labels import VIOLATIONS, label_of
from mask_detector.boxes import longer_side

# A person's label in live video is a flag only when their vote holds this much evidence (the sum of
# their answers' weights, older ones fading): two answers about a face twice the judged size, or more
# about smaller ones. Answers about faces below the judged size alone never reach it.
PERSON_EVIDENCE = 2.0


@dataclass(frozen=True)
class Judging:
    """``flag_probabilities``: ((face size, probability), ...) by rising size: from each size on (the
    face's longer side in pixels), all violations together must reach that probability for a violation
    label to stand. A face smaller than the first size is not judged. Empty: every face, at 0.5."""

    flag_probabilities: tuple = ()

    @property
    def min_face_size(self):
        return self.flag_probabilities[0][0] if self.flag_probabilities else 0

    def flag_probability(self, box):
        """What a violation needs at this face's size; None when the face is too small to judge."""
        side = longer_side(box)
        needed = 0.5 if not self.flag_probabilities else None
        for size, probability in self.flag_probabilities:
            if side >= size:
                needed = probability
        return needed

    def judged(self, box, probabilities):
        """Whether the face shows enough to stand by its label: large enough, and sure enough of a violation.

        A face labelled `mask` needs no more than its size: it raises no flag.
        """
        needed = self.flag_probability(box)
        if needed is None:
            return False
        return bool(label_of(probabilities) not in VIOLATIONS or 1 - probabilities["mask"] >= needed)

    def person_judged(self, vote, box):
        """Whether a person's combined vote (tracking.LabelVote), whose face is now at ``box``, is decided
        on enough evidence to be a flag."""
        if vote.label is None or vote.evidence < PERSON_EVIDENCE:
            return False
        needed = self.flag_probability(box)
        if needed is None:  # seen large before, small now: the larger faces' bar
            needed = self.flag_probabilities[0][1]
        probabilities = dict(zip(vote.class_names, vote.probabilities))
        return bool(vote.label not in VIOLATIONS or 1 - probabilities["mask"] >= needed)

    def weight(self, box):
        """How much one answer about a face of this box counts in a person's vote: 0.1, or 0.5 to 1.

        Below the judged size an answer counts a little (a person walking
        towards a camera is small first), too little ever to make a flag alone:
        with the vote's fading, 0.1 an answer adds up to at most 1.0, under
        PERSON_EVIDENCE. From the judged size it counts half, from twice that fully.
        """
        if not self.min_face_size:
            return 1.0
        side = longer_side(box)
        return 0.1 if side < self.min_face_size else min(1.0, side / (2 * self.min_face_size))


def judging_of(card):
    """The Judging kept in a model card (a dict); the plain likeliest class when it has none."""
    try:
        kept = card["judging"]
        return Judging(tuple(sorted((int(size), float(probability))
                                    for size, probability in kept["flag_probabilities"].items())))
    except (KeyError, TypeError, ValueError, AttributeError):
        return Judging()
