"""Remake tests/data/reference: each shipped model's prediction of the committed 18-frame sequence.

    python scripts/reference_predictions.py [NAME ...]     (default: every shipped model)

Run it only when a model is re-shipped (scripts/ship_models.py): the reference is what the
shipped weights predicted with the code of the day they were shipped, and
tests/test_reference_predictions.py then holds every later refactor of the data path, the
models, the scheduler or the pipeline to it. The sequence itself (tests/data/reference/data)
is never regenerated, so a generator change does not move the reference.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "reference"
SEQUENCE = ("p_001", "p_001_press_palm_high_x5_right")


def weights_sha256(folder: Path) -> str:
    """One hash over every safetensors file of a model folder (component layout), by relative path."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.safetensors")):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def main(names: list[str]) -> int:
    from egopressdiff.inference import PredictOptions, predict_dataset
    from egopressdiff.shipped import SHIPPED_MODEL_NAMES, resolve_checkpoint
    from egopressdiff.training.registry import load_model

    manifest_path = REF / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for name in names or SHIPPED_MODEL_NAMES:
        folder = resolve_checkpoint(name)
        model = load_model(folder)
        req = model.data_requirements()
        window = int(req["clip_length"])
        overlap = min(4, window // 4)
        settings = {"steps": None, "samples": 1, "window": window, "overlap": overlap, "seed": 0,
                    "output_floor_kpa": getattr(model.config, "output_floor_kpa", None)}
        with tempfile.TemporaryDirectory() as tmp:
            opts = PredictOptions(steps=None, samples=1, window=window, overlap=overlap, seed=0, progress=False)
            predict_dataset(model, REF / "data", tmp, split="all", options=opts)
            z = np.load(Path(tmp) / SEQUENCE[0] / f"{SEQUENCE[1]}.npz")
            frames, pressure = z["frame"], z["pressure_kpa"]
            peak = float(pressure.max())
        if peak <= 1.0:  # a reference without contact would hold a refactor to nothing: leave it out
            manifest.pop(name, None)
            (REF / f"{name}.npz").unlink(missing_ok=True)
            print(f"{name}: max {peak:.2f} kPa, no contact on the reference sequence -> not used as a reference")
            continue
        np.savez_compressed(REF / f"{name}.npz", frame=frames, pressure_kpa=pressure)
        manifest[name] = {"weights_sha256": weights_sha256(folder), "sequence": SEQUENCE[1], "settings": settings}
        print(f"{name}: max {peak:.2f} kPa -> {REF / (name + '.npz')}")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
