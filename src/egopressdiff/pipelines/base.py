"""What every pressure pipeline shares: in-memory inputs -> checked arrays -> processor -> windows -> output.

A pipeline holds a model (EgoPressDiff or a per-frame baseline) and the
:class:`~egopressdiff.data.processor.PressureInputProcessor` matching what it was trained on.
``pipe(rgb, depth, vertices, joints, intrinsics, ...)`` takes numpy or torch arrays of any
length, checks them (one clear error naming the argument, the frame and what is wrong), builds
the model inputs, predicts in overlapping windows (:mod:`egopressdiff.pipelines.windows`) and
returns a :class:`PressureOutput`. No ground truth is needed anywhere on this path.

Subclasses implement :meth:`PressurePipeline.sample`: the model inputs of one window -> kPa maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egopressdiff.data import layout
from egopressdiff.errors import CheckpointError, InputError
from egopressdiff.pipelines.windows import DEFAULT_BATCH_SIZE

CONTACT_THRESHOLD_KPA = 1.0  # the field's contact threshold (PressureVision / EgoPressure)
PRECISIONS = ("fp32", "bf16", "auto")  # PressurePipeline.set_precision


@dataclass
class PressureOutput:
    """What a pipeline returns for T frames (numpy, on the CPU).

    Attributes:
        pressure_kpa: (T, 224, 224) float32 UV-pressure maps in kPa (0 outside the UV mask).
        pressure_std_kpa: (T, 224, 224) float32 spread of the samples (``num_samples > 1``), else None.
        force_n: (T,) total normal force in newtons (the maps integrated over the posed mesh's surface).
        contact: (T,) bool, some texel above the 1 kPa contact threshold.
    """

    pressure_kpa: np.ndarray
    pressure_std_kpa: np.ndarray | None
    force_n: np.ndarray
    contact: np.ndarray


def _as_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise InputError(f"{name} is not an array: {' '.join(str(e).split())}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0][0]
        raise InputError(f"{name} holds NaN or inf (frame {int(bad)})")


def _check_shape(arr: np.ndarray, name: str, tail: tuple, what: str) -> None:
    if arr.ndim != len(tail) + 1 or any(t is not None and s != t for s, t in zip(arr.shape[1:], tail)):
        raise InputError(f"{name} must have shape {what}, got {tuple(arr.shape)}")


def check_inputs(rgb, depth, vertices, joints, ego_R=None, ego_T=None) -> dict:
    """Validated numpy versions of the pipeline's per-frame arrays (see :meth:`PressurePipeline.__call__`)."""
    rgb = _as_numpy(rgb, "rgb")
    _check_shape(rgb, "rgb", (None, None, 3), "(T, H, W, 3)")
    if rgb.dtype != np.uint8:
        _check_finite(rgb, "rgb")
        if np.issubdtype(rgb.dtype, np.floating) and (rgb.min() < 0 or rgb.max() > 1):
            raise InputError("rgb as floats must lie in [0, 1] (or give uint8 in [0, 255])")
        if not np.issubdtype(rgb.dtype, np.floating):
            raise InputError(f"rgb must be uint8 in [0, 255] or floats in [0, 1], got dtype {rgb.dtype}")
        rgb = np.rint(rgb * 255).astype(np.uint8)
    t = len(rgb)
    if t == 0:
        raise InputError("rgb holds no frames")
    out = {"rgb": rgb}
    per_frame = [("depth", depth, (None, None), "(T, H, W) in millimetres"),
                 ("vertices", vertices, (layout.NUM_VERTICES, 3), "(T, 778, 3) in metres"),
                 ("joints", joints, (layout.NUM_JOINTS, 3), "(T, 21, 3) in metres")]
    if (ego_R is None) != (ego_T is None):
        raise InputError("give both ego_R and ego_T (world -> camera) or neither")
    if ego_R is not None:
        per_frame += [("ego_R", ego_R, (3, 3), "(T, 3, 3)"), ("ego_T", ego_T, (3,), "(T, 3)")]
    for name, value, tail, what in per_frame:
        arr = _as_numpy(value, name)
        _check_shape(arr, name, tail, what)
        _check_finite(arr, name)
        if len(arr) != t:
            raise InputError(f"{name} has {len(arr)} frames but rgb has {t}")
        out[name] = arr
    if np.any(out["depth"] < 0):
        raise InputError("depth must be >= 0 millimetres (0 = no measurement)")
    return out


def as_intrinsics(intrinsics, width: int, height: int):
    """ColorIntrinsics from a ColorIntrinsics, a {fx, fy, cx, cy} mapping or a 3x3 K matrix (at the image size)."""
    from egopressdiff.data.calibration import ColorIntrinsics

    if isinstance(intrinsics, ColorIntrinsics):
        return intrinsics if (intrinsics.width, intrinsics.height) == (width, height) else \
            intrinsics.scaled(width, height)
    if isinstance(intrinsics, dict):
        try:
            fx, fy, cx, cy = (float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy"))
        except (KeyError, TypeError, ValueError):
            raise InputError("intrinsics as a mapping needs numeric fx, fy, cx, cy (pixels)") from None
    else:
        k = _as_numpy(intrinsics, "intrinsics")
        if k.shape != (3, 3):
            raise InputError(f"intrinsics must be a 3x3 K matrix or {{fx, fy, cx, cy}}, got shape {k.shape}")
        fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    if not (fx > 0 and fy > 0 and np.isfinite([cx, cy]).all()):
        raise InputError(f"intrinsics need fx, fy > 0 and finite cx, cy; got {fx}, {fy}, {cx}, {cy}")
    return ColorIntrinsics(fx, fy, cx, cy, int(width), int(height))


def resolve_atlas(atlas, hand_side: str):
    """The UV atlas: an atlas object, "synthetic" (the built-in procedural hand) or "mano" (the user's MANO files)."""
    if hand_side not in ("left", "right"):
        raise InputError(f"hand_side must be 'left' or 'right', got {hand_side!r}")
    if atlas is None or atlas == "synthetic":
        from egopressdiff.data.hand import synthetic_atlas

        return synthetic_atlas(hand_side)
    if atlas == "mano":
        from egopressdiff.data.mano_uv import load_mano_atlas

        return load_mano_atlas(hand_side)
    if isinstance(atlas, str):
        raise InputError(f"atlas must be 'synthetic', 'mano' or a UVAtlas, got {atlas!r}")
    return atlas


class PressurePipeline:
    """The shared part of :class:`EgoPressDiffPipeline` and :class:`PerFrameBaselinePipeline`."""

    model_type: str = ""  # what ``from_pretrained`` accepts (the registry's model_type)
    also_serves: tuple[str, ...] = ()  # further model types with the same interface

    def __init__(self, model, processor=None):
        from egopressdiff.data.processor import PressureInputProcessor

        self.model = model
        req = model.data_requirements()
        self.processor = processor or PressureInputProcessor(
            crop_size=req.get("crop_size") or 64, uv_conditioning=bool(req.get("uv_conditioning")),
            uv_cond_size=req.get("uv_cond_size") or 64)
        self.clip_length = int(req.get("clip_length") or 16)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path, device=None):
        """A shipped model's name (``egopressdiff models``), a ``save_pretrained`` folder or a training run."""
        from egopressdiff.shipped import resolve_checkpoint
        from egopressdiff.training.registry import model_class, read_model_type

        path = resolve_checkpoint(name_or_path)
        model_type = read_model_type(path)
        if cls.model_type and model_type not in (cls.model_type, *cls.also_serves):
            raise CheckpointError(f"{name_or_path} holds a {model_type!r} model; {cls.__name__} needs "
                                  f"{cls.model_type!r} (egopressdiff.load_pipeline picks the right pipeline)")
        model = model_class(model_type).from_pretrained(path)
        pipe = pipeline_for(model)
        return pipe.to(device) if device is not None else pipe

    def save_pretrained(self, directory, overwrite: bool = True) -> Path:
        return self.model.save_pretrained(directory, overwrite=overwrite)

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self

    @property
    def device(self):
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ speed options
    # Precision, compilation and memory format change how fast a pipeline runs, never what it
    # computes beyond float rounding; none is on by default (the Python API computes in fp32).
    precision: str = "fp32"  # "fp32", "bf16" or "auto" (bf16 on CUDA, fp32 on CPU)

    def set_precision(self, precision: str = "auto"):
        """Compute in ``precision``: "fp32", "bf16" (autocast: matmuls, convolutions and attention
        in bfloat16, norms and the sampler's state in float32) or "auto" (bf16 on CUDA, fp32 elsewhere)."""
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        return self

    def enable_autocast(self, dtype=None):
        """bf16 autocast (``dtype`` torch.bfloat16, the default; float32 turns it off)."""
        import torch

        dtype = torch.bfloat16 if dtype is None else dtype
        if dtype not in (torch.bfloat16, torch.float32):
            raise InputError(f"autocast supports torch.bfloat16 (or float32 = off), got {dtype}")
        return self.set_precision("bf16" if dtype == torch.bfloat16 else "fp32")

    @property
    def autocast_dtype(self):
        """The autocast dtype in effect on the pipeline's device (None = plain fp32)."""
        import torch

        if self.precision == "bf16" or (self.precision == "auto" and self.device.type == "cuda"):
            return torch.bfloat16
        return None

    def autocast(self):
        """Context manager: autocast to :attr:`autocast_dtype` on the pipeline's device, or nothing."""
        import contextlib

        import torch

        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def compile_target(self):
        """The network that does the per-window work (what :meth:`compile` compiles): the model's
        ``net`` where it has one (the per-frame baselines' image network), else the model."""
        net = getattr(self.model, "net", None)
        return net if net is not None else self.model

    def compile(self, mode: str | None = "auto", backend: str = "inductor", fullgraph: bool = False,
                dynamic: bool | None = None, **options):
        """``torch.compile`` the per-step network in place (its state dict and saving are unchanged).

        ``mode="auto"``: "reduce-overhead" on CUDA (CUDA graphs: the sampling loop calls the
        network with the same shapes every step, so one captured graph is replayed), torch's
        default mode elsewhere. The first call of each new input shape compiles (seconds to
        minutes); later calls are fast. ``backend="aot_eager"`` traces without generating code.
        """
        if mode == "auto":
            mode = "reduce-overhead" if self.device.type == "cuda" and backend == "inductor" else None
        self.compile_target().compile(mode=mode, backend=backend, fullgraph=fullgraph, dynamic=dynamic,
                                      **options)
        return self

    def enable_channels_last(self):
        """Put the per-step network's convolution weights in channels-last memory format (NHWC
        kernels on GPU tensor cores; on CPU it changes little)."""
        import torch

        # only the 4-D (2-D convolution) weights: module.to(memory_format=...) refuses the
        # temporal blocks' 5-D Conv3d kernels
        for param in self.compile_target().parameters():
            if param.dim() == 4:
                param.data = param.data.contiguous(memory_format=torch.channels_last)
        return self

    # ------------------------------------------------------------------ prediction
    def sample(self, batch: dict, num_inference_steps: int | None = None, seed: int = 0, num_samples: int = 1,
               frame_ids=None) -> dict:
        """Model inputs of one window (B, N, ...) -> {"pressure_kpa": (B, N, 224, 224)[, "pressure_std_kpa"]}."""
        raise NotImplementedError

    def __call__(self, rgb, depth, vertices, joints, intrinsics, *, hand_side: str = "right",
                 depth_calibration=None, ego_R=None, ego_T=None, atlas=None,
                 num_inference_steps: int | None = None, num_samples: int = 1, generator=None, seed: int = 0,
                 window: int | None = None, overlap: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: bool = False) -> PressureOutput:
        """Predict UV-pressure maps for T frames of one recording; no ground truth needed.

        Args:
            rgb: (T, H, W, 3) uint8 (or floats in [0, 1]) ego colour frames, undistorted.
            depth: (T, h, w) depth in millimetres, 0 = no measurement: registered to the colour image
                (same pixel grid as ``rgb``), or a raw sensor frame with its ``depth_calibration``
                (a :class:`~egopressdiff.data.calibration.DepthCalibration` or a k4a calibration dict).
            vertices: (T, 778, 3) hand-mesh vertices in metres, in the camera frame -- or in a world
                frame when ``ego_R`` (T, 3, 3) / ``ego_T`` (T, 3) (world -> camera) are given; a world
                frame whose z = 0 plane is the contact surface also gives the UV model the height channel.
            joints: (T, 21, 3) joints in the same frame (EgoPressure order: wrist, thumb..pinky base->tip).
            intrinsics: the colour camera: a 3x3 K, {fx, fy, cx, cy} (pixels at the size of ``rgb``)
                or a ColorIntrinsics.
            hand_side: "right" or "left".
            atlas: "synthetic" (default: the built-in hand the shipped models were trained on), "mano"
                (the UV layout from your MANO files) or a UVAtlas.
            num_inference_steps: sampling steps (default: the model's); ignored by per-frame baselines.
            num_samples: samples averaged into the estimate; their spread is ``pressure_std_kpa``.
            generator: a ``torch.Generator`` to draw the seed from (else ``seed``): the same seed gives
                the same maps, whatever the windowing.
            window, overlap: frames per window (default the model's clip length) and their overlap.
            batch_size: windows sampled together in one model call (faster; memory grows with it).
        """
        import torch

        from egopressdiff.data.calibration import DepthCalibration, parse_k4a
        from egopressdiff.pipelines.windows import predict_windows

        arrays = check_inputs(rgb, depth, vertices, joints, ego_R, ego_T)
        t, h, w = arrays["rgb"].shape[:3]
        intr = as_intrinsics(intrinsics, w, h)
        uv_atlas = resolve_atlas(atlas, hand_side)
        if depth_calibration is not None and not isinstance(depth_calibration, DepthCalibration):
            depth_calibration = parse_k4a(depth_calibration)
        elif depth_calibration is None and arrays["depth"].shape[1:] != (h, w):
            raise InputError(f"depth is {arrays['depth'].shape[2]}x{arrays['depth'].shape[1]} but rgb is {w}x{h}: "
                             "registered depth must share the colour image's pixel grid (or pass depth_calibration)")
        if num_samples < 1 or batch_size < 1:
            raise InputError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
        window = int(window or self.clip_length)
        overlap = min(4, window // 4) if overlap is None else int(overlap)
        if window < 1 or not 0 <= overlap < window:
            raise InputError(f"need window >= 1 and 0 <= overlap < window, got window={window}, overlap={overlap}")
        if generator is not None:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())

        def load_window(start: int, stop: int) -> dict:
            sl = slice(start, stop)
            item = self.processor(images=arrays["rgb"][sl], depth=arrays["depth"][sl],
                                  vertices=arrays["vertices"][sl], joints=arrays["joints"][sl],
                                  ego_R=arrays["ego_R"][sl] if "ego_R" in arrays else None,
                                  ego_T=arrays["ego_T"][sl] if "ego_T" in arrays else None,
                                  intrinsics=intr, depth_calibration=depth_calibration, atlas=uv_atlas,
                                  frames=np.arange(start, stop))
            return {k: v.unsqueeze(0) for k, v in item.items()}

        mean = np.zeros((t, layout.UV_SIZE, layout.UV_SIZE), np.float32)
        std = np.zeros_like(mean) if num_samples > 1 else None
        self.model.eval()
        with torch.no_grad(), self.autocast():
            frames = predict_windows(self, t, load_window, window=window, overlap=overlap,
                                     steps=num_inference_steps, seed=seed, num_samples=num_samples,
                                     batch_size=batch_size)
            if progress:
                from tqdm.auto import tqdm

                frames = tqdm(frames, total=t, desc="predict", unit="frame")
            for i, m, s in frames:
                mean[i] = m
                if std is not None:
                    std[i] = s
        force = np.concatenate([uv_atlas.total_force_newtons(mean[i:i + 64], arrays["vertices"][i:i + 64])
                                for i in range(0, t, 64)]).astype(np.float32)  # chunks: flat memory
        return PressureOutput(pressure_kpa=mean, pressure_std_kpa=std, force_n=force,
                              contact=(mean > CONTACT_THRESHOLD_KPA).reshape(t, -1).any(axis=1))


def pipeline_for(model) -> PressurePipeline:
    """The pipeline class matching a loaded model."""
    from egopressdiff.pipelines.egopressdiff import EgoPressDiffPipeline
    from egopressdiff.pipelines.perframe import PerFrameBaselinePipeline

    for cls in (EgoPressDiffPipeline, PerFrameBaselinePipeline):
        served = (cls.model_type, *cls.also_serves)
        if getattr(model, "model_type", None) in served or type(model).__name__ == cls.model_class_name:
            return cls(model)
    raise CheckpointError(f"no pipeline for a {type(model).__name__} model")


def load_pipeline(name_or_path, device=None) -> PressurePipeline:
    """The right pipeline for a shipped model name, a model folder or a training run."""
    return PressurePipeline.from_pretrained(name_or_path, device=device)
