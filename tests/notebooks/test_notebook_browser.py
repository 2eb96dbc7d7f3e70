"""Notebooks in a real browser: JupyterLab, headless Chromium, Run All, and the reader sees
what the lesson promises (support/lessons.py's EXPECTED) and a rendered figure: 00-start-here
and one notebook per lesson of issue 17. One JupyterLab and one browser page serve them all
(per pytest worker): the page loads JupyterLab once, as a student's does, and each test opens
its notebook in it, runs it with Run All on a kernel of its own, and closes it (kernel shut
down). Loading JupyterLab in a fresh Chromium for each notebook cost about 5 s of CPU each.

Follows ../shared/recipes/browser-notebook-test.md (proven on this kind of machine): JupyterLab
on a free loopback port with its settings, data and runtime directories in tmp, and the
headless Chromium of support/browser.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.browser import chromium, require
from support.lessons import BROWSER_LESSONS, EXPECTED

ROOT = Path(__file__).resolve().parents[2]
# The lessons run here instead of in test_notebooks_run.py's nbclient kernel: the same real
# kernel, seen through JupyterLab as a student sees it. Each must show every text
# test_notebooks_run.EXPECTED names for it (00-start-here: `sensor 12` twice, simulated and
# for real), a rendered figure and no traceback. One notebook per lesson of issue 17 (11 runs
# real TCP in network namespaces: nbclient, which also checks they are all removed).
NOTEBOOKS = {name: {text: (2 if text == "sensor 12" else 1) for text in EXPECTED[name]}
             for name in BROWSER_LESSONS}
INSTALL = "sudo apt-get install -y chromium chromium-driver && pip install selenium jupyterlab"

# Every script reads the notebook the test opened (kept as window.openedNotebook: the shell's
# current widget follows focus, which a headless page may never move), not others that may
# still be in the DOM.
KERNEL_STATE_JS = """
const w = window.openedNotebook;
if (!w || !w.context || !w.sessionContext) return 'no-notebook';
if (w.context.path !== arguments[0]) return 'other:' + w.context.path;
if (!(w.context.isReady && w.sessionContext.isReady)) return 'starting';
const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
return kernel ? kernel.status : 'no-kernel';
"""
OUTPUT_JS = """
const root = window.openedNotebook.node;
const outs = Array.from(root.querySelectorAll('.jp-OutputArea-output'));
const imgs = Array.from(root.querySelectorAll('.jp-OutputArea-output img'));
const errors = Array.from(root.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(e => e.innerText).filter(t => t.includes('Traceback'));
const busy = Array.from(root.querySelectorAll('.jp-InputPrompt'))
    .some(p => p.innerText.includes('*'));
return {text: outs.map(o => o.innerText).join('\\n'),
        imgOk: imgs.some(i => i.complete && i.naturalWidth > 0),
        busy: busy, errors: errors};
"""
APP_RESTORED_JS = """
const done = arguments[arguments.length - 1];
if (!window.jupyterapp) { done(false); return; }
window.jupyterapp.restored.then(() => done(true), () => done(false));
"""
OPEN_JS = """
const done = arguments[arguments.length - 1];
window.jupyterapp.commands.execute('docmanager:open', {path: arguments[0], factory: 'Notebook'})
    .then(w => {  // active, so that Run All (which acts on the active notebook) runs this one
        window.openedNotebook = w;
        window.jupyterapp.shell.activateById(w.id);
        done('opened');
    }, e => done(String(e)));
"""
# Shut the notebook's kernel down and close its tab without the "save changes?" dialog (the
# copy is a throwaway); the next notebook then starts from an empty shell.
CLOSE_JS = """
const done = arguments[arguments.length - 1];
const w = window.openedNotebook;
window.openedNotebook = null;
if (!w || !w.sessionContext) { done('none'); return; }
w.sessionContext.shutdown().then(() => { w.dispose(); done('closed'); },
                                e => { w.dispose(); done(String(e)); });
"""

def _require_tools() -> None:
    require("chromium", "chromedriver", modules=("selenium", "jupyterlab"), install=INSTALL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    pytest.fail(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory):
    """JupyterLab serving copies of the NOTEBOOKS on a free loopback port; stopped after."""
    _require_tools()
    tmp_path = tmp_path_factory.mktemp("browser")
    root = tmp_path / "nb"
    root.mkdir()
    for name in NOTEBOOKS:  # JupyterLab may autosave: never the originals
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root / f"demo-{name}.ipynb")
    # The notebook finds data/scenarios by walking up from its directory.
    (root / "data").symlink_to(ROOT / "data", target_is_directory=True)
    home = tmp_path / "jhome"
    settings = home / "settings"
    _write_json(settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                {"windowingMode": "none"})  # every cell in the DOM
    _write_json(settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}",
               "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=env, cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        _wait_http(f"{base}/api/status?token={token}", 60, proc, log)
        yield base, token, tmp_path
    finally:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _wait_kernel_idle(driver, path: str, timeout: float) -> None:
    """Until the notebook at ``path`` is the open one and its kernel is idle; the failure
    names the state it was stuck in."""
    deadline = time.monotonic() + timeout
    while (state := driver.execute_script(KERNEL_STATE_JS, path)) != "idle":
        if time.monotonic() > deadline:
            pytest.fail(f"{path}: kernel not idle within {timeout} s (state: {state})")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def lab_page(jupyter_lab):
    """One headless Chromium with JupyterLab loaded (a workspace of its own, empty)."""
    from selenium.webdriver.support.ui import WebDriverWait

    base, token, root = jupyter_lab
    driver = chromium(root / "chromium-profile", "--window-size=1400,1000", timeout=60)
    try:
        driver.get(f"{base}/lab/workspaces/browser-tests/tree?reset&token={token}")
        WebDriverWait(driver, 90, 0.25).until(lambda d: d.execute_async_script(APP_RESTORED_JS))
        yield driver, root
    finally:
        driver.quit()


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs_in_a_browser_and_shows_its_result_and_a_figure(lab_page,
                                                                      name: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver, root = lab_page
    tmp = root / name
    tmp.mkdir()
    expected = NOTEBOOKS[name]
    path = f"demo-{name}.ipynb"
    try:
        assert driver.execute_async_script(OPEN_JS, path) == "opened"
        _wait_kernel_idle(driver, path, 90)
        driver.execute_script(
            "return window.jupyterapp.commands.execute('notebook:run-all-cells')")
        state = WebDriverWait(driver, 120, 0.25).until(
            lambda d: (s := d.execute_script(OUTPUT_JS))["imgOk"] and not s["busy"]
            and all(s["text"].count(text) >= n for text, n in expected.items()) and s)
        assert not state["errors"], "\n".join(state["errors"])
        if name == "00-start-here":
            assert "sensor 12" in state["text"].splitlines()  # what sub -v printed, alone
        image = driver.execute_script(
            "return window.openedNotebook.node.querySelector('.jp-OutputArea-output img')")
        driver.execute_script("arguments[0].scrollIntoView({block:'center'})", image)
        driver.save_screenshot(str(tmp / f"{name}.png"))
    finally:
        driver.execute_async_script(CLOSE_JS)
