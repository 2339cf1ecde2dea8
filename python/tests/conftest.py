"""Shared fixtures of the Python package's tests (run by CTest as python.pytest against the build tree)."""
import os
import shutil

import pytest

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="session")
def cli():
    """The `backprop` command-line tool: CTest passes the build's in BACKPROP_CLI, else the one on PATH."""
    path = os.environ.get("BACKPROP_CLI") or shutil.which("backprop")
    if not path:
        pytest.fail("the backprop command-line tool was not found: set BACKPROP_CLI to it (CTest does)")
    return path
