"""How the synthetic gestures are staged: gesture specs, postures and the dataset plan.

Sequences use the real gesture names, every family of the real data
(``layout.GESTURE_FAMILIES``): palm presses (palm only / palm and fingers),
finger presses (all fingertips), one-by-one presses (flat or cupped hand, each
finger in turn while the others rest lightly), index presses, index drags (pull
towards the body, push away, rotate left/right about the fingertip, drawing a
word-like path), pinches (thumb pressing down while the index pinches; pinch-zoom
with thumb and index sliding apart on the pad) and **no-contact hovers** of the
palm / fingers / index / pinch poses 2-8 mm above the pad. ``high`` / ``low`` in
the name set the peak force (e.g. index press 6-10 N vs 1.5-3 N; palm press
25-40 N vs 6-12 N); ``x5`` / ``3x`` the repetitions.

Gestures are assigned round-robin over an order that cycles through the families
(hover second), continuing across participants, so every family appears once a
dataset has 7 sequences; the hand side alternates (two thirds right).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from egopressdiff.data import layout


@dataclass(frozen=True)
class GestureSpec:
    """How a gesture is staged (built by ``_spec`` from the real gesture name)."""

    family: str
    posture: str  # a key of _POSTURES: flat | palm_lift | flat_tips | fingers | cupped | index | pinch | zoom
    groups: tuple  # contact groups: palm | finger<f> | tip<f>
    primary: str  # the group that sets the hand height
    shares: tuple  # force share of each group
    force: tuple  # (lo, hi) newtons at peak (sum over groups)
    hover: bool = False
    motion: str = "press"  # press | onebyone | pull | push | rotate-left | rotate-right | draw | zoom | pinch
    reps: int = 5


def _intensity(gesture: str) -> str:
    if "no-contact" in gesture:
        return "none"
    if "_high" in gesture:
        return "high"
    if "_low" in gesture:
        return "low"
    return "medium"


def _reps(gesture: str) -> int:
    m = re.search(r"(?:_x(\d+)|_(\d+)x)$", gesture)
    return int(m.group(1) or m.group(2)) if m else 5


_TIPS5 = ("tip0", "tip1", "tip2", "tip3", "tip4")
_TIPS4 = ("tip1", "tip2", "tip3", "tip4")


def _spec(gesture: str) -> GestureSpec:
    fam = layout.family_of_gesture(gesture)
    inten = _intensity(gesture)
    hi = inten == "high"
    reps = _reps(gesture)
    if fam == "palm_press" or (fam == "hover" and gesture.startswith("press_palm")):
        if "palm-and-fingers" in gesture:
            groups = ("palm", "finger1", "finger2", "finger3", "finger4")
            return GestureSpec(fam, "flat", groups, "palm", (0.64, 0.1, 0.1, 0.09, 0.07),
                               (30.0, 45.0) if hi else (8.0, 15.0), fam == "hover", "press", reps)
        return GestureSpec(fam, "palm_lift", ("palm",), "palm", (1.0,), (25.0, 40.0) if hi else (6.0, 12.0),
                           fam == "hover", "press", reps)
    if fam == "finger_press" or (fam == "hover" and gesture.startswith("press_fingers")):
        return GestureSpec(fam, "fingers", _TIPS5, "tip2", (0.2, 0.22, 0.22, 0.19, 0.17),
                           (18.0, 32.0) if hi else (5.0, 10.0), fam == "hover", "press", reps)
    if fam == "one_by_one":
        posture = "cupped" if "cupped" in gesture else "flat_tips"
        return GestureSpec(fam, posture, _TIPS4, "tip2", (0.25, 0.25, 0.25, 0.25),
                           (5.0, 9.0) if hi else (1.5, 3.0), False, "onebyone", reps)
    if fam == "index_press" or (fam == "hover" and gesture.startswith("index_press")):
        return GestureSpec(fam, "index", ("tip1",), "tip1", (1.0,), (6.0, 10.0) if hi else (1.5, 3.0),
                           fam == "hover", "press", reps)
    if fam == "index_drag":
        motion = {"index_press_pull_x5": "pull", "index_press_push_x5": "push",
                  "index_press_rotate-left_x5": "rotate-left", "index_press_rotate-right_x5": "rotate-right",
                  }.get(gesture, "draw")
        return GestureSpec(fam, "index", ("tip1",), "tip1", (1.0,), (2.0, 5.0), False, motion, reps)
    if fam == "pinch" or (fam == "hover" and gesture.startswith("pinch")):
        if "zoom" in gesture:
            return GestureSpec(fam, "zoom", ("tip1", "tip0"), "tip1", (0.5, 0.5), (3.0, 7.0), False, "zoom", reps)
        return GestureSpec(fam, "pinch", ("tip0",), "tip0", (1.0,), (5.0, 9.0) if hi else (1.5, 3.0),
                           fam == "hover", "pinch", reps)
    raise ValueError(f"synthetic generator has no staging for gesture {gesture!r} (family {fam!r})")


# Postures: flexion (deg, thumb..pinky x MCP/PIP/DIP; thumb CMC/MCP/IP), abduction (deg), twist (deg),
# hand pitch (deg, fingers down), roll (deg, thumb side down).
_POSTURES = {
    "flat": dict(flex=[[0, 5, 5], [4, 4, 2], [4, 4, 2], [4, 4, 2], [4, 4, 2]], abduct=[12, -4, 0, 3, 8],
                 twist=[0, 0, 0, 0, 0], pitch=3.0, roll=0.0),
    "palm_lift": dict(flex=[[0, 0, 0], [-14, 2, 2], [-14, 2, 2], [-14, 2, 2], [-14, 2, 2]],
                      abduct=[14, -4, 0, 3, 8], twist=[0, 0, 0, 0, 0], pitch=3.0, roll=0.0),
    "flat_tips": dict(flex=[[10, 10, 5], [18, 12, 6], [18, 12, 6], [18, 12, 6], [18, 12, 6]],
                      abduct=[0, -4, 0, 3, 8], twist=[0, 0, 0, 0, 0], pitch=9.0, roll=0.0),
    "fingers": dict(flex=[[12, 20, 15], [30, 40, 18], [30, 40, 18], [30, 40, 18], [30, 38, 16]],
                    abduct=[-10, -5, 0, 4, 9], twist=[0, 0, 0, 0, 0], pitch=24.0, roll=0.0),
    "cupped": dict(flex=[[15, 25, 20], [35, 55, 30], [35, 55, 30], [35, 55, 30], [35, 50, 28]],
                   abduct=[-8, -4, 0, 3, 7], twist=[0, 0, 0, 0, 0], pitch=20.0, roll=0.0),
    "index": dict(flex=[[20, 25, 25], [22, 35, 18], [75, 95, 60], [78, 95, 60], [80, 95, 55]],
                  abduct=[6, 0, 0, 0, 0], twist=[0, 0, 0, 0, 0], pitch=34.0, roll=5.0),
    "pinch": dict(flex=[[0, 10, 10], [40, 50, 28], [70, 90, 55], [75, 90, 55], [80, 90, 50]],
                  abduct=[0, 0, 0, 0, 0], twist=[0, 0, 0, 0, 0], pitch=15.0, roll=65.0),
    "zoom": dict(flex=[[20, 15, 10], [22, 35, 18], [75, 95, 60], [78, 95, 60], [80, 95, 55]],
                 abduct=[-10, 0, 0, 0, 0], twist=[0, 0, 0, 0, 0], pitch=34.0, roll=10.0),
}


def gesture_order() -> list[str]:
    """All real gesture names in the round-robin order: families interleaved, hover second."""
    fams = ["palm_press", "hover", "finger_press", "index_drag", "one_by_one", "pinch", "index_press"]
    lists = {f: list(layout.GESTURE_FAMILIES[f]) for f in fams}
    order = []
    while any(lists.values()):
        for f in fams:
            if lists[f]:
                order.append(lists[f].pop(0))
    return order


@dataclass(frozen=True)
class SequencePlan:
    participant: str
    participant_index: int
    sequence_index: int
    gesture: str
    side: str

    @property
    def name(self) -> str:
        return layout.sequence_name(self.participant, self.gesture, self.side)

    @property
    def family(self) -> str:
        return layout.family_of_gesture(self.gesture)


def plan_dataset(participants: int, sequences: int) -> list[SequencePlan]:
    """Deterministic (participant, gesture, side) plan: round-robin over :func:`gesture_order`
    continuing across participants; two thirds right hands."""
    order = gesture_order()
    if sequences > 2 * len(order):
        raise ValueError(f"at most {2 * len(order)} sequences per participant (distinct gesture/side names)")
    plans = []
    for p in range(participants):
        pname = layout.participant_name(p)
        used = set()
        for s in range(sequences):
            k = p * sequences + s
            gesture = order[k % len(order)]
            side = "left" if k % 3 == 2 else "right"
            name = layout.sequence_name(pname, gesture, side)
            if name in used:
                side = "left" if side == "right" else "right"
            if layout.sequence_name(pname, gesture, side) in used:
                for g2 in order:  # next unused gesture
                    if layout.sequence_name(pname, g2, side) not in used:
                        gesture = g2
                        break
            used.add(layout.sequence_name(pname, gesture, side))
            plans.append(SequencePlan(pname, p, s, gesture, side))
    return plans


