"""When a face's label is a flag: the evidence a face must show before it is called a violation.

A flag ("No mask", "Mask worn wrongly", an alert) is what people act on, so it
needs a face large enough to judge, seen from near enough the front, and an
answer sure enough for its size and its pose: a small or turned face is
judged only when the model is very sure, and a face smaller or more turned
than the model was shown to judge well is not judged at all. All of it is
chosen on the validation split when the model is trained
(training.choose_judging) and kept in its card; a model without it judges
every face by its likeliest class.

Why a face is not judged, in the JSON's ``not_judged_because``: ``small``,
``turned`` (looking aside), ``tilted`` (looking up or down, or leaning on one
side), or ``unsure`` (labelled a violation with less probability than its
size and pose call for).
"""

from dataclasses import dataclass

from mask_detector.labels import VIOLATIONS, label_of
from mask_detector.boxes import longer_side

# A person's label in live video is a flag only when their vote holds this much weight (the sum of
# their answers' weights, older ones fading): two answers about a face twice the judged size, or more
# about smaller ones. Answers about faces below the judged size alone never reach it.
PERSON_WEIGHT = 2.0
# The weight of an answer about a face too small or too turned to judge (Judging.weight).
UNJUDGED_WEIGHT = 0.1


# A face's pose is judged by bins of two angles' sizes, in degrees (pose.Pose): how far it looks away from
# the camera, whichever way (``turn``: yaw and pitch together, since a face looking down hides its mask as
# one looking aside does), and how far it leans to one side (``roll``, which an aligned crop undoes).
POSE_BINS = {"turn": (0, 15, 30, 45, 60, 90), "roll": (0, 20, 40, 90)}
NOT_JUDGED_REASONS = ("small", "turned", "tilted", "unsure")
POSE_REASONS = ("turned", "tilted")  # those a pose gives (display.py writes them on the picture)


def pose_reason(name, pose):
    """Why a face whose ``name`` angle is past the judged poses is not judged: looking aside is "turned";
    looking up or down, or leaning on one side, "tilted"."""
    if name == "turn" and abs(pose.yaw) >= abs(pose.pitch):
        return "turned"
    return "tilted"


def pose_bin(angle, edges):
    """The index of the bin an angle's size falls in (the last bin takes all beyond its lower edge)."""
    size = abs(angle)
    return next((i for i in range(len(edges) - 1) if size < edges[i + 1]), len(edges) - 2)


@dataclass(frozen=True)
class Judging:
    """``flag_probabilities``: ((face size, probability), ...) by rising size: from each size on (the
    face's longer side in pixels), all violations together must reach that probability for a violation
    label to stand. A face smaller than the first size is not judged. Empty: every face, at 0.5.

    ``pose_probabilities``: {angle name: (probability or None, ...) one per bin of POSE_BINS}: what a
    violation needs at that angle; None where faces so turned or tilted are not judged. A face must meet
    both its size's and each of its angles' probabilities. Empty: pose is not looked at.
    """

    flag_probabilities: tuple = ()
    pose_probabilities: tuple = ()  # ((angle name, (probability or None, ...)), ...)

    def pose_needs(self, pose):
        """(what a violation needs at this pose, the reason it is not judged or None); 0 when no pose."""
        needed = 0.0
        if pose is None:
            return needed, None
        for name, by_bin in self.pose_probabilities:
            probability = by_bin[pose_bin(getattr(pose, name), POSE_BINS[name])]
            if probability is None:
                return None, pose_reason(name, pose)
            needed = max(needed, probability)
        return needed, None

    def not_judged_because(self, box, probabilities, pose=None):
        """Why the face is not judged (NOT_JUDGED_REASONS), or None when it is: large enough, seen from near
        enough the front, and, when labelled a violation, sure enough for its size and pose.

        A face labelled `mask` needs no more than its size and pose: it raises no flag.
        """
        needed = self.flag_probability(box)
        if needed is None:
            return "small"
        pose_needed, reason = self.pose_needs(pose)
        if reason:
            return reason
        if label_of(probabilities) in VIOLATIONS and 1 - probabilities["mask"] < max(needed, pose_needed):
            return "unsure"
        return None

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

    def judged(self, box, probabilities, pose=None):
        """Whether the face shows enough to stand by its label (not_judged_because says why not)."""
        return self.not_judged_because(box, probabilities, pose) is None

    def person_judged(self, vote, box):
        """Whether a person's combined vote (tracking.LabelVote), whose face is now at ``box``, is decided
        on enough evidence to be a flag. Answers about faces too small or too turned to judge weigh too
        little ever to make that evidence alone (weight): a person never seen well is not judged."""
        if vote.label is None or vote.weight < PERSON_WEIGHT:
            return False
        needed = self.flag_probability(box)
        if needed is None:  # seen large before, small now: the larger faces' bar
            needed = self.flag_probabilities[0][1]
        probabilities = dict(zip(vote.class_names, vote.probabilities))
        return bool(vote.label not in VIOLATIONS or 1 - probabilities["mask"] >= needed)

    def weight(self, box, pose=None, probabilities=None):
        """How much one answer about a face of this box and pose counts in a person's vote: 0.1, or 0.5 to 1.

        An answer that would not be judged in a photo (too small, turned or
        tilted too far, or a violation less sure than its size and pose call
        for: not_judged_because, given its ``probabilities``) counts a little
        (a person walking towards a camera is small first, and looks aside),
        too little ever to make a flag alone: with the vote's fading, 0.1 an
        answer adds up to at most 1.0, under PERSON_WEIGHT. From the judged
        size an answer counts half, from twice that fully.
        """
        if probabilities is not None:
            if self.not_judged_because(box, probabilities, pose):
                return UNJUDGED_WEIGHT
        elif self.flag_probability(box) is None or self.pose_needs(pose)[1]:
            return UNJUDGED_WEIGHT
        if not self.min_face_size:
            return 1.0
        return min(1.0, longer_side(box) / (2 * self.min_face_size))


def judging_of(card):
    """The Judging kept in a model card (a dict); the plain likeliest class when it has none."""
    try:
        kept = card["judging"]
        by_size = tuple(sorted((int(size), float(probability))
                               for size, probability in kept["flag_probabilities"].items()))
    except (KeyError, TypeError, ValueError, AttributeError):
        return Judging()
    try:
        by_pose = tuple((name, tuple(None if p is None else float(p) for p in kept["pose_probabilities"][name]))
                        for name in POSE_BINS if name in kept["pose_probabilities"]
                        and len(kept["pose_probabilities"][name]) == len(POSE_BINS[name]) - 1)
    except (KeyError, TypeError, ValueError, AttributeError):
        by_pose = ()  # a card from before poses were judged
    return Judging(by_size, by_pose)
