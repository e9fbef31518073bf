"""The README's Python example runs as written (and its outputs have the shapes it says)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_api_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section should hold one example"
    return blocks[0]


def test_readme_python_example_runs_as_written():
    code = _python_api_example()
    out = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README) + ":python-api", "exec"), scope)
    res = scope["out"]
    t = len(scope["frames"])
    assert t >= 16 and res.pressure_kpa.shape == (t, 224, 224) and res.pressure_std_kpa.shape == (t, 224, 224)
    assert res.force_n.shape == (t,) and res.contact.shape == (t,)
    assert (res.pressure_kpa >= 0).all()
    printed = out.getvalue().splitlines()
    assert printed[0] == f"({t}, 224, 224) ({t}, 224, 224)"
