"""The public names users import from the package root all resolve, lazily."""

from __future__ import annotations

import subprocess
import sys

import aiolightning


def test_every_public_name_resolves() -> None:
    missing = [name for name in aiolightning.__all__ if getattr(aiolightning, name, None) is None]
    assert missing == []


def test_root_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, aiolightning; "
        "heavy = [m for m in ('aiohttp', 'aiolightning.models', 'aiolightning.api') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
