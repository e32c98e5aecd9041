"""The type stubs (localprop/_localprop.pyi) describe the extension as built: every class,
function, method and argument, with the same names and defaults (mypy's stubtest)."""

import subprocess
import sys

import pytest


def test_type_stubs_match_the_extension():
    pytest.importorskip("mypy")
    # PEP 800's @disjoint_base is left out: the stubs target type checkers of today.
    cmd = [sys.executable, "-m", "mypy.stubtest", "--ignore-disjoint-bases", "localprop"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
