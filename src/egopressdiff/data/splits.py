"""Participant splits (train / val / test), deterministic and documented.

Rule: participants are sorted by id; the last ``round(20 %)`` (at least one)
form **test**, the one before them **val**, the rest **train**. With fewer than
three participants there is nothing to hold out honestly: every split is all
participants (:func:`describe_split` reports ``held_out=False`` then). Splitting by participant means no person's hands are
seen in training and evaluation alike.
"""

from __future__ import annotations

from egopressdiff.errors import ConfigError

SPLITS = ("train", "val", "test", "all")
TEST_FRACTION = 0.2


def split_table(participants) -> dict[str, list[str]]:
    """{'train': [...], 'val': [...], 'test': [...], 'all': [...]} for the given participant ids."""
    ps = sorted(set(participants))
    n = len(ps)
    if n < 3:
        return {"train": ps, "val": ps, "test": ps, "all": ps}
    n_test = max(1, round(TEST_FRACTION * n))
    n_val = 1
    n_test = min(n_test, n - 2)  # keep at least one training participant
    return {"train": ps[: n - n_test - n_val], "val": ps[n - n_test - n_val: n - n_test], "test": ps[n - n_test:],
            "all": ps}


def split_participants(participants, split: str) -> list[str]:
    """The participants of ``split`` ('train', 'val', 'test' or 'all'), sorted."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split_table(participants)[split]


def describe_split(participants) -> dict:
    """The split table plus ``held_out``: whether val/test are disjoint from train."""
    t = split_table(participants)
    return dict(t, held_out=len(set(t["train"]) & set(t["test"])) == 0)


def select_sequences(reader, split: str | None = None, participants=None, sequences=None) -> list[tuple[str, str]]:
    """(participant, sequence) pairs chosen by split / participant list / sequence names."""
    from egopressdiff.errors import DataError, EgoPressDiffError
    from egopressdiff.fsutil import check_safe_name

    parts = reader.participants()
    if participants:
        unknown = sorted(set(participants) - set(parts))
        if unknown:
            raise DataError(f"participant {unknown[0]} is not in the dataset", path=reader.root)
        parts = [p for p in parts if p in set(participants)]
    elif split and split != "all":
        parts = split_participants(parts, split)
    pairs = [(p, s) for p in parts for s in reader.sequences(p)]
    if sequences:
        wanted = set(sequences)
        missing = wanted - {s for _, s in pairs}
        if missing:
            raise DataError(f"sequence {sorted(missing)[0]} is not among the selected participants", path=reader.root)
        pairs = [(p, s) for p, s in pairs if s in wanted]
    if not pairs:
        raise DataError("no sequences selected", path=reader.root)
    for p, s in pairs:
        try:
            check_safe_name(p, "participant name")
            check_safe_name(s, "sequence name")
        except EgoPressDiffError as e:  # a crafted dataset: name the folder, write nothing
            raise DataError(f"{e}; refusing to use it in output paths", path=reader.root / "data" / p / s) from None
    return pairs
