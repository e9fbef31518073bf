"""Process-level runtime settings shared by the train / predict / bench paths."""

from __future__ import annotations

import os

THREAD_ENV_VARS = ("EGOPRESSDIFF_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def physical_cores() -> int:
    """Physical CPU cores usable by this process (affinity-limited; logical CPUs if unknown)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    phys = None
    try:
        import psutil  # a dependency of accelerate

        phys = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001 - psutil missing or unable to tell
        phys = None
    if not phys:
        return max(1, usable)
    logical = os.cpu_count() or usable
    # scale the physical count by the share of logical CPUs this process may use
    return max(1, min(usable, round(phys * usable / max(1, logical))))


def configure_cpu_threads() -> int:
    """Set torch's intra-op threads to the physical cores (divided among local processes of a
    ``torchrun`` launch) unless the user chose: ``EGOPRESSDIFF_NUM_THREADS`` wins, and
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` are left to torch. Returns the thread count in use."""
    import torch

    own = os.environ.get("EGOPRESSDIFF_NUM_THREADS")
    if own:
        try:
            n = int(own)
        except ValueError:
            n = 0
        if n >= 1:
            torch.set_num_threads(n)
        return torch.get_num_threads()
    if any(os.environ.get(v) for v in THREAD_ENV_VARS[1:]):
        return torch.get_num_threads()
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    n = max(1, physical_cores() // local)
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()
