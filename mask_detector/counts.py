"""People counted by final label: one type from the people of a live run to the window, the JSON summary, the
state message (MQTT), the statistics file and the metrics, and one definition of each figure.
"""

from dataclasses import dataclass, fields

from mask_detector.labels import VIOLATIONS

@dataclass
class PeopleCounts:
    """How many people had each final label."""

    mask: int = 0
    no_mask: int = 0
    incorrect: int = 0
    not_judged: int = 0  # people never seen well enough for their label to be a flag

    def add(self, label):
        """One more person whose final label is ``label`` (None: not judged)."""
        name = label or "not_judged"
        setattr(self, name, getattr(self, name) + 1)

    def by_label(self):
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @property
    def total(self):
        return sum(self.by_label().values())

    @property
    def compliance(self):
        """The share of people judged who wore a mask correctly; None when no one was judged."""
        judged = self.mask + sum(getattr(self, label) for label in VIOLATIONS)
        return self.mask / judged if judged else None

    def __add__(self, other):
        return PeopleCounts(**{label: n + getattr(other, label) for label, n in self.by_label().items()})

    def __sub__(self, other):
        return PeopleCounts(**{label: n - getattr(other, label) for label, n in self.by_label().items()})

    def compliance_json(self):
        """{"compliance": share, "compliance_percent": %}, both None before anyone was judged."""
        compliance = self.compliance
        return {"compliance": None if compliance is None else round(compliance, 4),
                "compliance_percent": None if compliance is None else round(100 * compliance, 1)}

    def to_json(self, class_names=None):
        """{"people": total, "people_<label>": n, ...}; without people_incorrect when ``class_names`` (a
        two-class model's) never say incorrect."""
        shown = self.by_label()
        if class_names is not None and "incorrect" not in class_names:
            del shown["incorrect"]
        return {"people": self.total} | {f"people_{label}": n for label, n in shown.items()}
