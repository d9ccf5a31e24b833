"""The README's Python example runs as written and prints the shapes it promises."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    printed = out.getvalue()
    assert "torch.Size([2, 3, 16, 64, 64])" in printed and "torch.Size([2, 3, 24, 64, 64])" in printed
    assert "'video': torch.Size([2])" in printed and "'image': torch.Size([2])" in printed
