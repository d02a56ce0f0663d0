"""The wheel: built once, it installs into a fresh environment and works there with no Node.

The fresh environment borrows the already installed dependencies (a ``.pth`` line to this
environment's site-packages, after its own), so only the wheel itself is new; its data files
(the prebuilt lab extension, the server-extension config) land in the fresh prefix, which is the
one JupyterLab reads. Commands run with ``PATH`` holding only that environment: no ``node``.
"""

from __future__ import annotations

import json
import re
import shutil
import site
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(REPO)], check=True)
    [built] = out.glob("aimodel_kernel-*.whl")
    return built


def test_wheel_ships_the_prebuilt_extension_and_server_config(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = "aimodel_kernel-0.1.0.data/data/"
    ext = f"{data}share/jupyter/labextensions/aimodel-kernel/"
    assert f"{ext}package.json" in names and f"{ext}install.json" in names
    assert any(re.match(rf"{ext}static/remoteEntry\.[0-9a-f]+\.js$", n) for n in names)
    assert f"{data}etc/jupyter/jupyter_server_config.d/aimodel_kernel.json" in names
    assert "aimodel_kernel/display/report.v1.schema.json" in names
    assert not any("node_modules" in n or n.endswith(".ts") for n in names)


def test_wheel_works_in_a_fresh_environment_without_node(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    own = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    (Path(own) / "zz_borrowed.pth").write_text(site.getsitepackages()[0] + "\n")
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True)
    env = {"PATH": str(env_dir / "bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    assert shutil.which("node", path=env["PATH"]) is None

    def run(*args: str) -> str:
        # console scripts live in the borrowed environment's bin/: call their entry points
        done = subprocess.run([py, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout + done.stderr

    where = run("-m", "pip", "show", "aimodel-kernel")
    assert f"Location: {own}" in where  # the wheel, not the repository's editable install
    labext = run("-c", "import sys; sys.argv[0] = 'jupyter-labextension'; "
                       "from jupyterlab.labextensions import main; main()", "list")
    assert re.search(r"aimodel-kernel v0\.1\.0 .*enabled.*OK", labext), labext
    assert str(env_dir) in labext
    serverext = run("-c", "from jupyter_server.extension.serverextension import main; main()",
                    "list")
    assert re.search(r"aimodel_kernel .*enabled", serverext), serverext

    # a real server from that environment serves the extension and answers our API
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    root.mkdir()
    server = subprocess.Popen(
        [py, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=t0k", f"--ServerApp.root_dir={root}",
         "--ServerApp.allow_root=True"],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                page = urllib.request.urlopen(f"{base}/lab?token=t0k", timeout=5).read().decode()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "lab did not start"
                time.sleep(0.5)
        config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>\s*(\{.*?\})\s*</script>',
                                      page, re.S).group(1))
        [ours] = [e for e in config["federated_extensions"] if e["name"] == "aimodel-kernel"]
        entry = urllib.request.urlopen(
            f"{base}/lab/extensions/aimodel-kernel/{ours['load']}?token=t0k", timeout=10).read()
        assert b"aimodel-kernel" in entry
        try:
            models = json.loads(urllib.request.urlopen(
                f"{base}/aimodel/api/models?dir=&token=t0k", timeout=30).read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(exc.read().decode()) from None
        assert models["models"] == [] and models["store"]["embedded"] is True
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (root / ".aimodel").exists()
