"""A real JupyterLab server and Debian's Chromium driven by Playwright, for end-to-end tests.

Imported by the browser test modules (``from lab_fixtures import *``) rather than kept in a
``conftest.py``, whose module name would shadow ``tests/conftest.py`` for the other tests.

The server runs in a temporary directory outside the repository, as root where needed, with the
news pop-up switched off and the app exposed as ``window.jupyterapp`` so tests can run commands.
Without a Chromium these tests skip loudly, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "out" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("AIMODEL_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running ``jupyter lab`` server: its root folder, URL and token."""

    def __init__(self, root: Path, port: int, token: str, process: subprocess.Popen) -> None:
        self.root, self.port, self.token, self.process = root, port, token, process
        self.url = f"http://127.0.0.1:{port}"

    def open_url(self, path: str) -> str:
        """The notebook in a workspace of its own, so no earlier test's layout is restored."""
        workspace = "ws-" + "".join(c if c.isalnum() else "-" for c in path)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab-root")
    settings = root.parent / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), "aimodel-test-token"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "AIMODEL_HOME", "JUPYTER_CONFIG_DIR")}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), PYTHONUNBUFFERED="1")
    log = (root.parent / "lab.log").open("w")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           f"--LabApp.workspaces_dir={root.parent / 'workspaces'}",
           "--ServerApp.disable_check_xsrf=False"]
    process = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Lab(root, port, token, process)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n"
                                       + (root.parent / "lab.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module. Playwright's sync API keeps its event loop running in
    this thread while it is open, so it must be closed before other modules (pytest-jupyter's
    fixtures in tests/server run their own loop) start."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found: .ci/run installs Debian's chromium package")
        print("\n*** SKIPPING BROWSER TESTS: no Chromium at /usr/bin/chromium "
              "(apt-get install chromium) ***", file=sys.stderr)
        pytest.skip("no Chromium found (apt-get install chromium); browser tests NOT run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    yield page
    # the page as the test left it, and what its console said (for a failure, the first look)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}-end.png"))
    (SHOTS / f"{request.node.name}-console.log").write_text("\n".join(messages))
    context.close()
