import os
import shutil
import tempfile
import socket
from pathlib import Path

import pytest

from bcai.sandbox.python import PythonSandbox

HOSTILE = Path(__file__).parent / "hostile"


@pytest.fixture(scope="module")
def workroot():
    # Children drop to `nobody` when the tests run as root: it must reach its work dir.
    root = Path(tempfile.mkdtemp(prefix="bcai-sandbox-test-"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox(workroot: Path):
    # A secret in our environment must never reach the program.
    os.environ["BCAI_TEST_SECRET"] = "hunter2"
    try:
        with PythonSandbox(workdir_root=str(workroot)) as box:
            yield box
    finally:
        os.environ.pop("BCAI_TEST_SECRET", None)


@pytest.fixture()
def listener():
    """A TCP listener on 127.0.0.1; yields (port, accepted) where accepted() polls it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)

    def accepted() -> bool:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    yield server.getsockname()[1], accepted
    server.close()
