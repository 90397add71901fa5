"""Drive the course notebooks in a real JupyterLab with headless Chromium, as a student would.

For each notebook (in order: 01 renders the tiny dataset, 03 trains the run that 04 and 05 read):
open it, Run > Run All Cells, wait until it has finished, collect a report (errors, stderr boxes,
widgets, images, sliders) and screenshots, move the scrubber's 'frame' slider, save, reload the page
while the kernel is alive ("reloaded"), shut the kernel down, close the tab, reopen the notebook without
running it ("reopened") and collect the report again. Everything goes into the artefact dir: report.json,
server.log and PNG screenshots (01_data-run.png, 01_data-scrubber.png, 01_data-reopened.png, ...).

The notebooks run in a temporary copy (tempfile.mkdtemp) of notebooks/*.ipynb with its own outputs/
(POSE_UTILS_OUTPUTS) and its own per-user Jupyter state, so the repository is never written to.

    .venv/bin/python pose_course/instructor/tests/browser/lab_driver.py --out outputs/browser \
        [--notebooks 01,03] [--keep]

Library use: `run(out_dir, notebooks=None, keep=False) -> dict` (the report); `BrowserMissing` when
Chromium or ChromeDriver is not installed (its message is one line saying what to install).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
NOTEBOOKS = ("01_data", "02_model", "03_training", "04_evaluation", "05_experiments")
# Notebooks that show no widget: a page reload and a reopen can break widgets only, so these two phases
# (half a minute a notebook) are left out for them; the test checks that they still show none.
WIDGETLESS = ("02_model",)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MISSING = "Chromium not found: apt-get install chromium chromium-driver (Debian) for the browser test"
RUN_TIMEOUT_S = 900  # per notebook: Run All Cells to the end
WIDGET_SETTLE_S = 3  # after opening a notebook: time for widget views to load before the report
SCRUB_TIMEOUT_S = 15  # after moving the frame slider: time for the widget image to change

STDERR_MIME = "application/vnd.jupyter.stderr"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class BrowserMissing(RuntimeError):
    """Chromium or ChromeDriver is not installed; str() is the one line to show."""


class LabError(RuntimeError):
    """The server or the page did not do what the driver waited for."""


def log(msg: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths; BrowserMissing (one line: what to install) when either is missing."""
    chromium = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    driver = CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    if not chromium or not driver:
        raise BrowserMissing(MISSING)
    return chromium, driver


def select_notebooks(spec: str | None) -> list[str]:
    """"01,03" (prefixes or full names) -> the matching names, always in the dependency order."""
    if not spec:
        return list(NOTEBOOKS)
    wanted = [s.strip().removesuffix(".ipynb") for s in spec.split(",") if s.strip()]
    unknown = [w for w in wanted if not any(n.startswith(w) for n in NOTEBOOKS)]
    if unknown:
        raise SystemExit(f"unknown notebooks {unknown}; choose from {', '.join(NOTEBOOKS)}")
    return [n for n in NOTEBOOKS if any(n.startswith(w) for w in wanted)]


# ---------------------------------------------------------------------------------------------------
# Workspace and server


def make_workspace(repo: Path = REPO) -> Path:
    """A temporary folder with a copy of the repository's notebooks/*.ipynb in notebooks/."""
    ws = Path(tempfile.mkdtemp(prefix="lab-browser-"))
    (ws / "notebooks").mkdir()
    for nb in sorted((repo / "notebooks").glob("*.ipynb")):
        shutil.copy2(nb, ws / "notebooks" / nb.name)
    (ws / "outputs").mkdir()
    return ws


def lab_env(ws: Path, repo: Path = REPO) -> dict:
    """The server's environment: this one, with outputs and the per-user Jupyter state in the workspace.

    Only user-level locations move; the environment's own (sys.prefix) config still applies:
    .venv/etc/jupyter, .venv/etc/ipython (kernel config), .venv/share/jupyter/lab/settings/overrides.json.
    """
    env = dict(os.environ)
    # tests/conftest.py sets TQDM_DISABLE for the pytest process; a student's JupyterLab has no such
    # variable (progress bars are part of what this test looks at). ipykernel stops forwarding C-level
    # output into cells when it sees PYTEST_CURRENT_TEST: under pytest the stderr boxes would vanish
    # for the wrong reason.
    env.pop("TQDM_DISABLE", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    if Path(repo).resolve() != REPO:  # another checkout's pose_utils before the installed (editable) one
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(repo).resolve()), env.get("PYTHONPATH"))
                                            if p)
    state = ws / ".user"
    env.update(
        POSE_UTILS_OUTPUTS=str(ws / "outputs"),
        TF_CPP_MIN_LOG_LEVEL="2",  # as `make lab` exports it
        JUPYTERLAB_SETTINGS_DIR=str(state / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        JUPYTER_CONFIG_DIR=str(state / "jupyter-config"),  # user-level (~/.jupyter); sys.prefix's stays
        JUPYTER_DATA_DIR=str(state / "jupyter-data"),  # user-level (~/.local/share/jupyter)
        IPYTHONDIR=str(state / "ipython"),  # user profile (~/.ipython); sys.prefix/etc/ipython stays
    )
    for key in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_RUNTIME_DIR",
                "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc, port: int, token: str, root: Path, log_path: Path, command: list[str]):
        self.proc, self.port, self.token, self.root = proc, port, token, root
        self.log_path, self.command = log_path, command
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server and everything it started (its own process group: kernels included)."""
        import signal

        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a kernel left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def start_server(ws: Path, artefacts: Path, env: dict, timeout: float = 120) -> Server:
    """Start JupyterLab on 127.0.0.1 at a free port with a random token, root dir `ws`; wait for it.

    The one place that builds the server's command line.
    """
    port, token = free_port(), secrets.token_hex(16)
    if "PYTHONPATH" not in env or (Path(env["PYTHONPATH"].split(os.pathsep)[0]) / "pose_utils" / "course"
                                   / "lab.py").is_file():
        # what `make lab` runs (course/lab.py): 127.0.0.1, --allow-root as root, the token from us
        command = [sys.executable, "-m", "pose_utils", "lab", "--root", str(ws), "--port", str(port),
                   "--token", token, "--no-browser"]
    else:  # --repo: a checkout from before `pose_utils lab` existed
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={ws}",
                   "--allow-root"]
    log_path = artefacts / "server.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(command, cwd=ws, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(proc, port, token, ws, log_path, command)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise LabError(f"JupyterLab exited with code {proc.returncode} before answering; "
                           f"{log_path}:\n{server.log_tail()}")
        try:
            server.api("/api/status", timeout=3)
            return server
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise LabError(f"JupyterLab did not answer /api/status within {timeout:.0f} s; "
                           f"{log_path}:\n{server.log_tail()}")
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------
# Browser


def start_browser(chromium: str, chromedriver: str, scale: float = 1.0, profile: Path | None = None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # a profile of its own (in the workspace): nothing of ~/.config/chromium is read or written
    profile = profile or Path(tempfile.mkdtemp(prefix="pose-chromium-"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--force-device-scale-factor={scale:g}", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.unhandled_prompt_behavior = "accept"  # a "leave page?" prompt must not block a reload
    # An explicit driver path: selenium-manager never runs (no download at test time).
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(30)
    return driver


# One script that reads the visible notebook: cells, outputs, widgets, images, sliders.
COLLECT_JS = r"""
const STDERR = arguments[0], WIDGET = arguments[1];
const panels = [...document.querySelectorAll('.jp-NotebookPanel')].filter(
    p => !p.classList.contains('lm-mod-hidden') && p.offsetParent !== null);
const panel = panels[0];
const out = {found: !!panel, devicePixelRatio: window.devicePixelRatio, cells: [],
             viewport: [window.innerWidth, window.innerHeight]};
if (!panel) return out;
const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
const num = v => (v === null || v === undefined || v === '' || isNaN(Number(v))) ? v : Number(v);
cells.forEach((cell, pos) => {
  const idx = cell.hasAttribute('data-windowed-list-index')
      ? Number(cell.getAttribute('data-windowed-list-index')) : pos;
  const kind = cell.classList.contains('jp-CodeCell') ? 'code'
      : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw';
  const prompt = cell.querySelector('.jp-InputPrompt');
  const c = {index: idx, kind, prompt: prompt ? prompt.textContent.trim() : null,
             outputs: [], stderr: [], widget_errors: [], widget_loading: 0, images: [], sliders: [],
             widgets: {}};
  let views = 0;
  cell.querySelectorAll('.jp-OutputArea-output').forEach(o => {
    const mime = o.getAttribute('data-mime-type');
    // a widget view: ipywidgets' renderer leaves data-mime-type unset; its child is a .jupyter-widgets
    const view = mime === WIDGET || (!mime && (o.querySelector(':scope > .jupyter-widgets')
        || /^(Error displaying widget|Loading widget)/.test((o.textContent || '').trim())));
    if (view) views += 1;
    c.outputs.push(view ? 'widget' : mime);
    if (mime === STDERR) c.stderr.push((o.innerText || o.textContent || '').slice(0, 6000));
    // ipywidgets' renderer writes these as the output node's own text (rendered or not)
    const own = (o.textContent || '').trim();
    if (own.startsWith('Error displaying widget')) c.widget_errors.push(own.slice(0, 300));
    if (own === 'Loading widget...') c.widget_loading += 1;
  });
  // any other "Error displaying widget" in the outputs' text (e.g. a nested view that failed)
  const outText = [...cell.querySelectorAll('.jp-OutputArea')].map(a => a.innerText || '').join('\n');
  const others = [...outText.matchAll(/Error displaying widget[^\n]*/g)].map(m => m[0].trim());
  others.slice(c.widget_errors.length).forEach(t => c.widget_errors.push(t));
  const count = sel => cell.querySelectorAll('.jp-OutputArea ' + sel).length;
  c.widgets = {views,
               jupyter_widgets: count('.jupyter-widgets'), sliders: count('.widget-slider'),
               images: count('.widget-image'),
               progress: count('.widget-hprogress, .widget-progress, .progress'),
               disconnected: count('.jupyter-widgets-disconnected')};
  cell.querySelectorAll('.jp-OutputArea img').forEach(img => {
    const r = img.getBoundingClientRect();
    c.images.push({naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
                   clientWidth: img.clientWidth, clientHeight: img.clientHeight,
                   rectWidth: Math.round(r.width * 100) / 100,
                   rectHeight: Math.round(r.height * 100) / 100,
                   complete: img.complete, inside_widget: !!img.closest('.jupyter-widgets'),
                   src_kind: (img.getAttribute('src') || '').split(':')[0]});
  });
  cell.querySelectorAll('.jp-OutputArea .widget-slider').forEach(s => {
    const h = s.querySelector('.noUi-handle');
    const label = s.querySelector('.widget-label');
    const readout = s.querySelector('.widget-readout');
    c.sliders.push({description: label ? label.textContent.trim() : '',
                    min: h ? num(h.getAttribute('aria-valuemin')) : null,
                    max: h ? num(h.getAttribute('aria-valuemax')) : null,
                    value: h ? num(h.getAttribute('aria-valuenow')) : null,
                    readout: readout ? readout.textContent.trim() : null});
  });
  out.cells.push(c);
});
return out;
"""

# SHA-256 of the bytes behind an <img> src (blob: or data: URLs are both fetchable from the page).
IMG_HASH_JS = r"""
const img = arguments[0], done = arguments[arguments.length - 1];
const src = img.getAttribute('src') || '';
fetch(src).then(r => r.arrayBuffer()).then(b => crypto.subtle.digest('SHA-256', b)).then(h => done(
    {src: src.slice(0, 80), sha256: [...new Uint8Array(h)].map(x => x.toString(16).padStart(2, '0')).join('')}
)).catch(e => done({src: src.slice(0, 80), sha256: null, error: String(e)}));
"""

MENU_ITEM_JS = r"""
const [label, command] = arguments;
const menus = [...document.querySelectorAll('.lm-Menu')].filter(m => m.offsetParent !== null
    || getComputedStyle(m).display !== 'none');
for (const m of menus.reverse()) {
  const items = [...m.querySelectorAll('li.lm-Menu-item')];
  const byLabel = items.find(li => {
    const l = li.querySelector('.lm-Menu-itemLabel');
    return l && l.textContent.trim() === label;
  });
  const byCmd = command ? items.find(li => li.getAttribute('data-command') === command) : null;
  if (byLabel || byCmd) return byLabel || byCmd;
}
return null;
"""


def _first_line(exc: BaseException) -> str:
    """An exception's message without selenium's stack trace lines."""
    text = getattr(exc, "msg", None) or str(exc)
    return (text.strip().splitlines() or [""])[0][:300]


def _ansi_free(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


class Lab:
    """One browser on one server; the methods act on the notebook open in it."""

    def __init__(self, driver, server: Server, artefacts: Path):
        self.d, self.server, self.artefacts = driver, server, artefacts

    # -- small helpers ----------------------------------------------------------------------------

    def wait(self, what: str, fn, timeout: float, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        last_exc = None
        while True:
            try:
                value = fn()
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001  (stale elements, a page in the middle of a reload)
                last_exc = exc
            if time.monotonic() > deadline:
                extra = f" (last error: {type(last_exc).__name__}: {last_exc})" if last_exc else ""
                raise LabError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
            time.sleep(interval)

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def screenshot(self, name: str) -> str:
        path = self.artefacts / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path.name

    def element_screenshot(self, element, name: str) -> str | None:
        try:
            size = element.size
            if not size.get("width") or not size.get("height"):
                return None  # e.g. the empty output of a closed widget
            self.js("arguments[0].scrollIntoView({block: 'center'});", element)
            time.sleep(0.5)
            path = self.artefacts / f"{name}.png"
            element.screenshot(str(path))
            return path.name
        except Exception as exc:  # noqa: BLE001
            log(f"element screenshot {name} failed: {type(exc).__name__}: {_first_line(exc)}")
            return None

    def dismiss_toasts(self) -> None:
        """Close JupyterLab's notification toasts (e.g. the news question) so they hide no output."""
        with contextlib.suppress(Exception):
            self.js("document.querySelectorAll('.Toastify__toast .Toastify__close-button, "
                    ".Toastify__toast button.jp-toast-button').forEach(b => b.click());")

    def console_errors(self) -> list[str]:
        try:
            entries = self.d.get_log("browser")
        except Exception:  # noqa: BLE001
            return []
        return [e.get("message", "")[:500] for e in entries if e.get("level") == "SEVERE"][:30]

    # -- JupyterLab state -------------------------------------------------------------------------

    def session(self, path: str) -> dict | None:
        for s in self.server.api("/api/sessions"):
            if s.get("path") == path:
                return s
        return None

    def kernel_state(self, path: str) -> str | None:
        s = self.session(path)
        return s["kernel"].get("execution_state") if s and s.get("kernel") else None

    def dom_status(self) -> str | None:
        return self.js("""
            const p = [...document.querySelectorAll('.jp-NotebookPanel')].find(
                p => !p.classList.contains('lm-mod-hidden') && p.offsetParent !== null);
            const i = p && p.querySelector('.jp-Notebook-ExecutionIndicator');
            return i ? i.getAttribute('data-status') : null;""")

    def wait_kernel_idle(self, path: str, timeout: float = 180) -> None:
        self.wait(f"the kernel of {path} to be idle",
                  lambda: self.kernel_state(path) == "idle" and self.dom_status() in ("idle", None),
                  timeout)

    def wait_lab_loaded(self, timeout: float = 120) -> None:
        self.wait("JupyterLab's menu bar", lambda: self.js(
            "return document.querySelectorAll('#jp-MainMenu .lm-MenuBar-item').length > 0"), timeout)

    def open_notebook(self, path: str, timeout: float = 180) -> None:
        """Load /lab/tree/PATH?reset (a page load; `reset`: no tabs restored from an earlier layout)
        and wait for its cells and an idle kernel."""
        self.d.get(self.server.url(f"/lab/tree/{path}?reset"))
        self.wait_lab_loaded()
        name = Path(path).name
        self.wait(f"the notebook {name} to show its cells", lambda: self.js(
            """const p = [...document.querySelectorAll('.jp-NotebookPanel')].find(
                   p => !p.classList.contains('lm-mod-hidden') && p.offsetParent !== null);
               return !!p && p.querySelectorAll('.jp-Cell').length > 0;"""), timeout)
        self.activate_tab(name)
        self.wait_kernel_idle(path, timeout)

    def activate_tab(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        for tab in self.d.find_elements(By.CSS_SELECTOR, ".lm-DockPanel-tabBar .lm-TabBar-tab"):
            with contextlib.suppress(Exception):
                if tab.find_element(By.CSS_SELECTOR, ".lm-TabBar-tabLabel").text.strip() == name:
                    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
                        tab.click()
                    return

    def menu(self, top: str, label: str, command: str | None = None) -> None:
        """Click a main-menu entry: the menu-bar item `top`, then the item with `label` (or `command`)."""
        from selenium.webdriver.common.by import By

        self.js("document.querySelectorAll('.lm-Menu').forEach(m => m.dispatchEvent("
                "new KeyboardEvent('keydown', {key: 'Escape', keyCode: 27, bubbles: true})));")
        tops = self.d.find_elements(By.CSS_SELECTOR, "#jp-MainMenu .lm-MenuBar-item")
        hit = [t for t in tops
               if t.find_element(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel").text.strip() == top]
        if not hit:
            raise LabError(f"no menu {top!r} in the menu bar (found {[t.text for t in tops]})")
        hit[0].click()
        item = self.wait(f"menu item {top} > {label}", lambda: self.js(MENU_ITEM_JS, label, command), 10)
        if "lm-mod-disabled" in (item.get_attribute("class") or ""):
            raise LabError(f"menu item {top} > {label} is disabled")
        item.click()

    def accept_dialog(self, timeout: float = 3) -> bool:
        """Click the accept button of a JupyterLab dialog if one shows up within `timeout`."""
        from selenium.webdriver.common.by import By

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            buttons = self.d.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-Dialog-button.jp-mod-accept")
            if buttons:
                buttons[0].click()
                return True
            time.sleep(0.3)
        return False

    def prompts(self) -> dict:
        return self.js("""
            const p = [...document.querySelectorAll('.jp-NotebookPanel')].find(
                p => !p.classList.contains('lm-mod-hidden') && p.offsetParent !== null);
            const cells = p ? [...p.querySelectorAll('.jp-Notebook .jp-CodeCell')] : [];
            const res = {total: cells.length, running: [], done: 0};
            cells.forEach(c => {
              const t = (c.querySelector('.jp-InputPrompt') || {}).textContent || '';
              const idx = Number(c.getAttribute('data-windowed-list-index'));
              if (t.includes('*')) res.running.push(idx); else if (/\\[\\d+\\]/.test(t)) res.done += 1;
            });
            return res;""")

    # -- one notebook -----------------------------------------------------------------------------

    def run_all(self, path: str, timeout: float) -> dict:
        """Run > Run All Cells, then wait until no prompt shows [*] and the kernel is idle."""
        name = Path(path).stem
        self.activate_tab(Path(path).name)
        t0 = time.monotonic()
        self.menu("Run", "Run All Cells", "notebook:run-all-cells")
        started, idle_polls, last_print = False, 0, t0
        state = self.prompts()
        while True:
            time.sleep(1)
            state = self.prompts()
            kernel = self.kernel_state(path)
            if state["running"] or state["done"]:
                started = True
            elapsed = time.monotonic() - t0
            if time.monotonic() - last_print >= 10:
                last_print = time.monotonic()
                at = f", running cell {state['running'][0]}" if state["running"] else ""
                log(f"{name}: {state['done']}/{state['total']} code cells done{at}, kernel {kernel}, "
                    f"{elapsed:.0f} s")
            if started and not state["running"] and kernel == "idle":
                idle_polls += 1
                if idle_polls >= 2:
                    break
            else:
                idle_polls = 0
            if not started and elapsed > 30 and kernel == "idle":
                raise LabError("Run All Cells started nothing within 30 s (no cell prompt changed)")
            if elapsed > timeout:
                return {"wall_s": round(elapsed, 1), "timed_out": True, "cells_done": state["done"],
                        "code_cells": state["total"], "running": state["running"]}
        wall = time.monotonic() - t0
        log(f"{name}: finished, {state['done']}/{state['total']} code cells ran, {wall:.0f} s")
        return {"wall_s": round(wall, 1), "timed_out": False, "cells_done": state["done"],
                "code_cells": state["total"], "running": []}

    def scroll_through(self, pause: float = 0.4) -> None:
        """Scroll the notebook from top to bottom a screen at a time, as a reader would: JupyterLab
        attaches (and ipywidgets renders) the outputs of off-screen cells only when they come near the
        viewport. Ends at the top."""
        step = """
            const p = [...document.querySelectorAll('.jp-NotebookPanel')].find(
                p => !p.classList.contains('lm-mod-hidden') && p.offsetParent !== null);
            const s = p && (p.querySelector('.jp-WindowedPanel-outer') || p.querySelector('.jp-Notebook'));
            if (!s) return true;
            if (arguments[0]) { s.scrollTop = 0; return false; }
            const before = s.scrollTop;
            s.scrollTop = before + Math.max(200, s.clientHeight * 0.8);
            return s.scrollTop === before || s.scrollTop + s.clientHeight >= s.scrollHeight - 1;"""
        self.js(step, True)
        for _ in range(400):
            time.sleep(pause)
            if self.js(step, False):
                break
        time.sleep(1.0)
        self.js(step, True)
        time.sleep(pause)

    def collect(self, name: str, phase: str, screenshots: bool | str = True) -> dict:
        """The phase's report (see module docstring) and its screenshots."""
        self.dismiss_toasts()
        self.scroll_through()
        raw = self.js(COLLECT_JS, STDERR_MIME, WIDGET_MIME)
        if not raw.get("found"):
            raise LabError("no visible notebook panel to report on")
        cells = raw["cells"]
        rep = {
            "code_cells": sum(c["kind"] == "code" for c in cells),
            "cells_in_dom": len(cells),
            "devicePixelRatio": raw["devicePixelRatio"],
            "viewport": raw["viewport"],
            "stderr_boxes": [{"cell": c["index"], "text": t} for c in cells for t in c["stderr"]],
            "widget_errors": [{"cell": c["index"], "text": t} for c in cells for t in c["widget_errors"]],
            "widget_loading": [c["index"] for c in cells if c["widget_loading"]],  # "Loading widget..."
            "images": [dict(i, cell=c["index"]) for c in cells for i in c["images"]],
            "sliders": [dict(s, cell=c["index"]) for c in cells for s in c["sliders"]],
            "widgets": {k: sum(c["widgets"][k] for c in cells) for k in
                        ("views", "jupyter_widgets", "sliders", "images", "progress", "disconnected")},
            "widget_cells": sorted({c["index"] for c in cells if c["widgets"]["views"]}),
            "outputs": {c["index"]: c["outputs"] for c in cells if c["outputs"]},
            "prompts": {c["index"]: c["prompt"] for c in cells if c["kind"] == "code"},
            "screenshots": [],
        }
        if screenshots:  # "page": the window only, not each figure and widget
            rep["screenshots"].append(self.screenshot(f"{name}-{phase}"))
            if screenshots != "page":
                rep["screenshots"] += self.output_screenshots(name, phase)
        return rep

    def output_screenshots(self, name: str, phase: str, limit: int = 4) -> list[str]:
        """Element screenshots of the first few figure outputs and of every widget view (max 3)."""
        from selenium.webdriver.common.by import By

        shots = []
        panel = self.d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden)")
        if not panel:
            return shots
        figures = [o for o in panel[0].find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                   if (o.get_attribute("data-mime-type") or "").startswith("image/")]
        for k, o in enumerate(figures[:limit], 1):
            shot = self.element_screenshot(o, f"{name}-{phase}-figure{k}")
            if shot:
                shots.append(shot)
        views = [o for o in panel[0].find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
                 if not o.get_attribute("data-mime-type")]
        for k, o in enumerate(views[:3], 1):
            shot = self.element_screenshot(o, f"{name}-{phase}-widget{k}")
            if shot:
                shots.append(shot)
        return shots

    def scrub(self, name: str) -> dict:
        """Move the 'frame' slider of the scrubber one step right; did the widget's picture change?"""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        sliders = [s for s in self.d.find_elements(By.CSS_SELECTOR,
                                                   ".jp-NotebookPanel:not(.lm-mod-hidden) .widget-slider")
                   if s.find_elements(By.CSS_SELECTOR, ".widget-label")
                   and s.find_element(By.CSS_SELECTOR, ".widget-label").text.strip() == "frame"]
        if not sliders:
            return {"found": False}
        slider = sliders[0]
        view = self.js("return arguments[0].closest('.jp-OutputArea-output')", slider)
        cell = self.js("const c = arguments[0].closest('.jp-Cell');"
                       "return c ? Number(c.getAttribute('data-windowed-list-index')) : null;", slider)
        res = {"found": True, "cell": cell, "screenshots": []}
        imgs = view.find_elements(By.CSS_SELECTOR, ".widget-image, img") if view else []
        res["has_widget_image"] = bool(view and view.find_elements(By.CSS_SELECTOR, "img.widget-image"))
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        readout = slider.find_elements(By.CSS_SELECTOR, ".widget-readout")

        def snap():
            return {"readout": readout[0].text.strip() if readout else None,
                    "value": handle.get_attribute("aria-valuenow"),
                    "image": self.d.execute_async_script(IMG_HASH_JS, imgs[0]) if imgs else None}

        self.js("arguments[0].scrollIntoView({block: 'center'});", view or slider)
        time.sleep(0.5)
        res["before"] = snap()
        shot = self.element_screenshot(view or slider, f"{name}-scrubber")
        if shot:
            res["screenshots"].append(shot)
        try:
            handle.send_keys(Keys.ARROW_RIGHT)
            res["method"] = "ARROW_RIGHT on .noUi-handle"
        except Exception as exc:  # noqa: BLE001  (not keyboard-interactable: click the track right of it)
            from selenium.webdriver.common.action_chains import ActionChains

            res["method"] = f"click on the track ({type(exc).__name__} on the handle)"
            track = slider.find_element(By.CSS_SELECTOR, ".noUi-target")
            w = track.size["width"]
            ActionChains(self.d).move_to_element_with_offset(track, int(w / 2 * 0.3), 0).click().perform()
        before = res["before"]
        deadline = time.monotonic() + SCRUB_TIMEOUT_S
        after = snap()
        while time.monotonic() < deadline:
            after = snap()
            img_changed = bool(before["image"] and after["image"]
                               and after["image"].get("sha256") != before["image"].get("sha256"))
            if img_changed:
                break
            time.sleep(0.5)
        res["after"] = after
        res["slider_moved"] = after["value"] != before["value"]
        res["src_changed"] = bool(before["image"] and after["image"]
                                  and after["image"].get("src") != before["image"].get("src"))
        res["image_changed"] = bool(before["image"] and after["image"] and before["image"].get("sha256")
                                    and after["image"].get("sha256") != before["image"].get("sha256"))
        time.sleep(0.5)
        shot = self.element_screenshot(view or slider, f"{name}-scrubber-after")
        if shot:
            res["screenshots"].append(shot)
        return res

    def save(self) -> None:
        self.menu("File", "Save Notebook", "docmanager:save")
        self.accept_dialog(2)  # e.g. a "notebook changed on disk" question
        self.wait("the notebook to be saved (tab not dirty)", lambda: not self.js(
            "return !!document.querySelector("
            "'.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current.jp-mod-dirty')"),
            30)

    def shutdown_kernel(self, path: str) -> str:
        how = "Kernel > Shut Down Kernel"
        try:
            self.menu("Kernel", "Shut Down Kernel", "kernelmenu:shutdown")
            self.accept_dialog(3)
            self.wait("the kernel to shut down", lambda: not (self.session(path) or {}).get("kernel"), 20)
        except LabError as exc:
            how = f"REST (the menu did not: {exc})"
            s = self.session(path)
            if s:
                self.server.api(f"/api/sessions/{s['id']}", method="DELETE")
        return how

    def tab_titles(self) -> list[str]:
        return self.js("return [...document.querySelectorAll('.lm-DockPanel-tabBar .lm-TabBar-tab "
                       ".lm-TabBar-tabLabel')].map(e => e.textContent.trim())")

    def close_tab(self, name: str) -> None:
        """File > Close Tab on the tab of notebook file `name`; wait until that tab is gone."""
        if name not in self.tab_titles():
            return
        self.activate_tab(name)
        self.menu("File", "Close Tab", "application:close")
        self.accept_dialog(2)
        self.wait(f"the tab {name} to close", lambda: name not in self.tab_titles(), 15)

    def clean_slate(self) -> None:
        """No kernel session left from an earlier notebook (each notebook starts as on a fresh lab)."""
        for s in self.server.api("/api/sessions"):
            with contextlib.suppress(Exception):
                self.server.api(f"/api/sessions/{s['id']}", method="DELETE")

    def reload_live(self, path: str) -> None:
        """Reload the page with the kernel running; the notebook comes back from the saved layout.

        Returns the URL reloaded (token removed)."""
        url = self.d.current_url
        self.d.refresh()
        self.wait_lab_loaded()
        try:
            self.wait("the notebook to come back after the reload", lambda: self.js(
                "return [...document.querySelectorAll('.jp-NotebookPanel')].some("
                "p => !p.classList.contains('lm-mod-hidden') && p.offsetParent !== null "
                "&& p.querySelectorAll('.jp-Cell').length > 0)"), 60)
        except LabError:
            self.open_notebook(path)
        self.activate_tab(Path(path).name)
        self.wait_kernel_idle(path)
        return re.sub(r"token=[0-9a-f]+", "token=***", url)


def read_saved(server: Server, path: str) -> dict | None:
    """The saved notebook (contents API): per cell, its (stream stderr | error) outputs in order."""
    try:
        nb = server.api(f"/api/contents/{path}?content=1&type=notebook")["content"]
    except Exception:  # noqa: BLE001
        return None
    cells = {}
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        kinds = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                kinds.append({"kind": "error", "ename": o.get("ename"), "evalue": o.get("evalue"),
                              "traceback": _ansi_free("\n".join(o.get("traceback", [])))})
            elif o.get("output_type") == "stream" and o.get("name") == "stderr":
                kinds.append({"kind": "stderr"})
        cells[i] = kinds
    widget_state = bool(nb.get("metadata", {}).get("widgets"))
    return {"cells": cells, "code_cells": sum(c.get("cell_type") == "code" for c in nb["cells"]),
            "widget_state_saved": widget_state}


TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|^\s*[A-Za-z_.]*(Error|Exception)\b", re.M)


def classify(phase: dict, saved: dict | None) -> None:
    """Split the phase's stderr boxes into "errors" (error outputs) and "stderr" (stream stderr).

    JupyterLab renders both with data-mime-type application/vnd.jupyter.stderr; the saved notebook says
    which is which (the boxes of a cell are in the order of its outputs). Without it: a traceback-looking
    text is an error.
    """
    errors, stderr = [], []
    by_cell: dict[int, list] = {}
    for box in phase.pop("stderr_boxes"):
        by_cell.setdefault(box["cell"], []).append(box["text"])
    for cell, texts in sorted(by_cell.items()):
        kinds = (saved or {}).get("cells", {}).get(cell)
        matched = kinds is not None and len(kinds) == len(texts)
        for k, text in enumerate(texts):
            if matched:
                is_error = kinds[k]["kind"] == "error"
            else:
                is_error = bool(TRACEBACK_RE.search(text))
            if is_error:
                e = {"cell": cell, "text": text[:3000], "classified_by": "saved" if matched else "text"}
                if matched:
                    e.update(ename=kinds[k]["ename"], evalue=(kinds[k]["evalue"] or "")[:500])
                errors.append(e)
            else:
                stderr.append({"cell": cell, "text": text[:300], "chars": len(text)})
    phase["errors"], phase["stderr"] = errors, stderr


def reload_and_reopen(lab: Lab, name: str, path: str, res: dict, step) -> None:
    """The phases that break widgets only: a page reload with the kernel alive, then the saved notebook
    reopened without running it."""
    res["reloaded_url"] = step("reload with the kernel alive", lab.reload_live, path)
    if res["reloaded_url"]:
        time.sleep(WIDGET_SETTLE_S)
        res["phases"]["reloaded"] = step("report after reload", lab.collect, name, "reloaded", "page")
    res["shutdown"] = step("shut down kernel", lab.shutdown_kernel, path) or None
    step("close tab", lab.close_tab, Path(path).name)
    log(f"{name}: reopening without running")
    if step("reopen", lab.open_notebook, path):
        time.sleep(WIDGET_SETTLE_S)
        res["phases"]["reopened"] = step("report after reopen", lab.collect, name, "reopened")


def run_notebook(lab: Lab, name: str, timeout: float) -> dict:
    path = f"notebooks/{name}.ipynb"
    res: dict = {"phases": {}, "problems": [], "step_s": {}}
    t0 = time.monotonic()

    def step(what, fn, *args):
        started = time.monotonic()
        try:
            value = fn(*args)
            return True if value is None else value
        except Exception as exc:  # noqa: BLE001  (record, go on with the next step)
            res["problems"].append(f"{what}: {type(exc).__name__}: {_first_line(exc)}")
            log(f"{name}: {what} failed: {type(exc).__name__}: {_first_line(exc)}")
            with contextlib.suppress(Exception):
                lab.screenshot(f"{name}-failed-{what.replace(' ', '_')}")
            return None
        finally:  # where a notebook's minute goes (report.json)
            res["step_s"][what] = round(time.monotonic() - started, 1)

    with contextlib.suppress(Exception):
        lab.clean_slate()
    log(f"{name}: opening")
    if step("open", lab.open_notebook, path) is None:
        res["wall_s"] = round(time.monotonic() - t0, 1)
        return res
    run = step("run all", lab.run_all, path, timeout)
    res["run"] = run
    if run and run.get("timed_out"):
        res["problems"].append(f"Run All Cells did not finish within {timeout:.0f} s "
                               f"({run['cells_done']}/{run['code_cells']} code cells done, "
                               f"running {run['running'][:1]})")
        with contextlib.suppress(Exception):
            s = lab.session(path)
            lab.server.api(f"/api/kernels/{s['kernel']['id']}/interrupt", method="POST")
            time.sleep(3)
    res["phases"]["run"] = step("report after run", lab.collect, name, "run")
    res["scrubber"] = step("scrubber", lab.scrub, name)
    step("save", lab.save)
    saved = read_saved(lab.server, path)
    res["widget_state_saved"] = saved["widget_state_saved"] if saved else None
    if saved and res["phases"].get("run") and saved["code_cells"] != res["phases"]["run"]["code_cells"]:
        res["problems"].append(f"the page shows {res['phases']['run']['code_cells']} code cells, the saved "
                               f"notebook has {saved['code_cells']} (windowing hides cells?)")
    if name not in WIDGETLESS:
        reload_and_reopen(lab, name, path, res, step)
    saved = read_saved(lab.server, path) or saved
    for phase in res["phases"].values():
        if phase:
            classify(phase, saved)
    # leave nothing running for the next notebook
    with contextlib.suppress(Exception):
        lab.shutdown_kernel(path)
    with contextlib.suppress(Exception):
        lab.close_tab(Path(path).name)
    res["console_errors"] = lab.console_errors()
    res["wall_s"] = round(time.monotonic() - t0, 1)
    log(f"{name}: done in {res['wall_s']:.0f} s")
    return res


def git_state(repo: Path = REPO) -> dict:
    """The checkout the notebooks were copied from: HEAD and the files changed since (read-only git)."""
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                  timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"head": git("rev-parse", "--short", "HEAD").strip(),
            "changed": [line[3:] for line in git("status", "--porcelain").splitlines() if line][:100]}


def summary(report: dict) -> list[str]:
    """One line per notebook: what the report says in short."""
    lines = []
    for name, res in report.get("notebooks", {}).items():
        ph = res.get("phases", {})
        run_, reo, rel = ph.get("run") or {}, ph.get("reopened") or {}, ph.get("reloaded") or {}
        scrub = res.get("scrubber") or {}
        frame = [f"{s['min']}..{s['max']}" for s in run_.get("sliders", [])
                 if s.get("description") == "frame"]
        parts = [f"{name}: run {(res.get('run') or {}).get('wall_s')} s",
                 f"errors {len(run_.get('errors', []))}", f"stderr {len(run_.get('stderr', []))}",
                 f"widget views {run_.get('widgets', {}).get('views')}",
                 f"'Error displaying widget' reloaded {len(rel.get('widget_errors', []))}"
                 f" reopened {len(reo.get('widget_errors', []))}"]
        if scrub.get("found"):
            parts.append(f"frame slider {'/'.join(frame)}, picture changed {scrub.get('image_changed')}")
        if res.get("problems"):
            parts.append(f"problems {len(res['problems'])}")
        lines.append(", ".join(parts))
    return lines


def clean_artefacts(out: Path) -> None:
    """Remove what an earlier run of this driver left in `out` (its own file names only)."""
    for pattern in ("0[0-9]_*.png", "report.json", "server.log"):
        for f in glob.glob(str(out / pattern)):
            os.remove(f)


def run(out_dir, notebooks=None, keep: bool = False, timeout: float = RUN_TIMEOUT_S,
        scale: float = 1.0, repo=REPO) -> dict:
    """Run the notebooks in JupyterLab; write report.json and screenshots into `out_dir`; the report.

    repo: the checkout whose notebooks/*.ipynb (and pose_utils, via PYTHONPATH) are used; default this one.
    """
    repo = Path(repo).resolve()
    chromium, chromedriver = find_browser()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    clean_artefacts(out)
    names = list(notebooks or NOTEBOOKS)
    t0 = time.monotonic()
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "notebooks": {}, "artefacts": str(out),
                    "repo": str(repo), "git": git_state(repo)}
    ws = make_workspace(repo)
    report["workspace"] = str(ws)
    server = driver = None
    try:
        env = lab_env(ws, repo)
        server = start_server(ws, out, env)
        report["server_command"] = [
            "***" if server.command[i - 1:i] == ["--token"] else
            ("--ServerApp.token=***" if a.startswith("--ServerApp.token=") else a)
            for i, a in enumerate(server.command)]
        log(f"JupyterLab at {server.base} (root {ws}); artefacts in {out}")
        driver = start_browser(chromium, chromedriver, scale, profile=ws / ".user" / "chromium")
        caps = driver.capabilities
        report["browser"] = f"{caps.get('browserName')} {caps.get('browserVersion')}"
        lab = Lab(driver, server, out)
        for name in names:
            try:
                report["notebooks"][name] = run_notebook(lab, name, timeout)
            except Exception as exc:  # noqa: BLE001
                report["notebooks"][name] = {"phases": {}, "problems": [
                    f"driver: {type(exc).__name__}: {exc}"], "traceback": traceback.format_exc()}
            _write(out, report, t0)
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        if server is not None:
            server.stop()
        if not keep:
            shutil.rmtree(ws, ignore_errors=True)
        report["wall_s"] = round(time.monotonic() - t0, 1)
        _write(out, report, t0)
    for line in summary(report):
        log(line)
    log(f"all done in {report['wall_s']:.0f} s; report: {out / 'report.json'}")
    return report


def _write(out: Path, report: dict, t0: float) -> None:
    report.setdefault("wall_s", None)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="artefact dir: report.json, server.log, screenshots")
    p.add_argument("--notebooks", default=None, help="e.g. 01,03 (default: all five, in order)")
    p.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    p.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S, help="seconds per notebook's run")
    p.add_argument("--scale", type=float, default=1.0, help="Chromium's device scale factor")
    p.add_argument("--repo", default=str(REPO),
                   help="checkout to take notebooks/ and pose_utils from (default: this one)")
    args = p.parse_args(argv)
    try:
        run(args.out, select_notebooks(args.notebooks), keep=args.keep, timeout=args.timeout,
            scale=args.scale, repo=args.repo)
    except BrowserMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
