"""Keep built clips in memory so later epochs cost no decoding.

On a small machine building a clip (JPEG/PNG decoding, depth registration, UV
unwrapping) can cost more than the tiny model's training step; a small
synthetic training set fits in RAM many times over, so after the first epoch
the data pipeline is free. Only valid when an item is a pure function of its
index (no augmentation). Each DataLoader worker process holds its own cache,
so use it with ``num_workers=0`` or persistent workers.
"""

from __future__ import annotations

from torch.utils.data import Dataset


class MemoryCachedDataset(Dataset):
    def __init__(self, dataset, max_items: int | None = None):
        if getattr(dataset, "augment", False):
            raise ValueError("an in-memory clip cache needs augmentation off (items must not change per epoch)")
        self.dataset = dataset
        self.max_items = max_items
        self._items: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self._items.get(index)
        if item is None:
            item = self.dataset[index]
            if self.max_items is None or len(self._items) < self.max_items:
                self._items[index] = item
        return item

    def __getattr__(self, name):  # delegate (clips, sequences, set_epoch, ...) to the wrapped dataset
        if name in ("dataset", "max_items", "_items"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
