"""`flannel-wizard demo --web` in a real headless browser (Debian's chromium and chromedriver, driven by
Selenium; .ci/run installs both), and its command-line refusals.

Reading the screen: textual-serve's page draws with xterm.js on a canvas (its WebGL addon gives up
without a GPU and the canvas addon takes over), so the text is in no DOM node or accessibility tree,
and the page keeps its Terminal object in a closure. What the terminal draws is what came in over the
page's websocket: chromium's own record of those frames (the DevTools performance log, read through
chromedriver; nothing injected into the page) is fed to pyte, a VT emulator, at the size the page
announced in its `resize` frames. That gives the screen as text whichever renderer xterm.js picked;
the screenshot shows the same screen as pixels.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyte
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from tests import lab
from tests.conftest import run_wizard
from wizard import webdemo

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# no internet here: without these chromium keeps opening connections that are refused
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1000,700")
BANNER = "DEMO — simulated node · scenario fresh-node · nothing on this machine changes"
WELCOME = "Welcome — what will happen, and is this node ready?"
ETCD = "etcd — where flannel keeps its network config"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


class Server:
    """`flannel-wizard demo --web` on a free loopback port, its demos' files under its own TMPDIR."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.port = free_port()
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.log = tmp_path / "server.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                lab.wizard_argv("demo", "--web", "--port", str(self.port), *extra), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(lab.REPO), "TMPDIR": str(self.tmpdir)})
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, f"the server exited: {self.log.read_text()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                break
            assert time.monotonic() < deadline, f"not listening after 20 s: {self.log.read_text()}"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> int | None:
        """Ctrl+C, as an operator stops it; SIGKILL to its whole group if that did not end it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        code = self.proc.poll()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything of it still running (the group outlives it)
        self.proc.wait()
        return code


class BrowserScreen:
    """The served terminal as text: the websocket frames chromium received, fed to a VT emulator."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.frames = 0

    def update(self) -> None:
        events = [json.loads(entry["message"])["message"] for entry in self.driver.get_log("performance")]
        events.sort(key=lambda e: e.get("params", {}).get("timestamp", 0))
        for event in events:
            method, params = event["method"], event.get("params", {})
            if method == "Network.webSocketCreated":
                size = parse_qs(urlparse(params["url"]).query)
                self.screen.resize(int(size["height"][0]), int(size["width"][0]))
            elif method == "Network.webSocketFrameSent":
                message = json.loads(params["response"]["payloadData"])
                if message[0] == "resize":
                    self.screen.resize(message[1]["height"], message[1]["width"])
            elif method == "Network.webSocketFrameReceived" and params["response"]["opcode"] == 2:
                self.stream.feed(base64.b64decode(params["response"]["payloadData"]))
                self.frames += 1

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait_for(self, *needles: str, gone: str = "", timeout: float = 30) -> None:
        def shown(_: object) -> bool:
            self.update()
            text = self.text()
            return all(n in text for n in needles) and not (gone and gone in text)

        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(shown)
        except Exception as exc:
            raise AssertionError(f"{needles} not on the page within {timeout} s; it shows:\n{self.text()}") from exc


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    profile = tmp_path / "chromium-profile"  # new and empty for each test
    profile.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        yield driver
    finally:
        if driver is not None:
            driver.quit()  # chromium, then chromedriver
        service.stop()
        if service.process is not None:
            # whatever chromium left: its processes name the profile directory
            for pid in descendants(service.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)


def test_the_demo_in_a_browser(tmp_path: Path, browser: webdriver.Chrome) -> None:
    started = time.monotonic()
    server = Server(tmp_path, "--speed", "50")
    try:
        browser.get(server.url)
        page = BrowserScreen(browser)
        page.wait_for(BANNER, WELCOME, "13 of 13 checks passed")
        assert page.lines()[0].strip().startswith(BANNER)  # the banner is the top line, not text somewhere in a page
        assert "-first-byte" in (browser.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
        shot = tmp_path / "welcome.png"
        assert browser.save_screenshot(str(shot))
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width > 500 and height > 300 and len(png) > 10_000, (width, height, len(png))

        # what the browser sessions run: the demo, never the wizard on this node
        served = [cmdline(pid) for pid in descendants(server.proc.pid)]
        demos = [argv for argv in served if argv[1:3] == ["-m", "wizard"]]
        assert demos and all(argv[3:5] == ["demo", "--served"] for argv in demos), served
        roots = list(server.tmpdir.glob("flannel-wizard-demo-fresh-node-*"))
        assert len(roots) == 1

        terminal = browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea")
        terminal.send_keys(Keys.CONTROL, "n")
        page.wait_for(BANNER, ETCD, gone=WELCOME)
        print(f"\npage shown and ctrl+n answered {time.monotonic() - started:.2f} s after the server started")
    finally:
        code = server.stop()
    assert code == 0, server.log.read_text()
    log = server.log.read_text()
    assert f"serving the demo (scenario fresh-node) at http://127.0.0.1:{server.port}/" in log
    assert "listening on 127.0.0.1 only (this machine)" in log
    assert "Traceback" not in log, log
    # the session's demo was told to quit when the server stopped, and removed its files
    assert list(server.tmpdir.iterdir()) == []


def test_served_command_is_the_demo() -> None:
    command = webdemo.served_command("etcd-down", 2.0, autoplay=True, answers="a.yaml")
    assert " -m wizard demo --served --scenario etcd-down --speed 2 --autoplay --answers " in command
    assert command.endswith(f"{os.path.abspath('a.yaml')}")
    assert webdemo.served_command("x; rm -rf /", 1.0).endswith("--scenario 'x; rm -rf /' --speed 1")


def test_web_options_are_refused_where_they_do_not_belong() -> None:
    done = run_wizard("--web")
    assert done.returncode == 2 and "unrecognized arguments: --web" in done.stderr
    done = run_wizard("demo", "--port", "8000")
    assert done.returncode == 2
    assert "error: --host and --port go with --web — serve the demo with `flannel-wizard demo --web --port P`" \
        in done.stderr
    done = run_wizard("demo", "--web", "--port", "0")
    assert done.returncode == 2 and "'0' is not a port; give 1 to 65535" in done.stderr
    done = run_wizard("demo", "--web", "--scenario", "laptop")
    assert done.returncode == 2 and "no demo scenario 'laptop'" in done.stderr
    done = run_wizard("demo", "--served")  # only textual-serve's sessions run that
    assert done.returncode == 2 and "--served is for the sessions `demo --web` starts" in done.stderr


def test_web_demo_without_textual_serve_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / "textual_serve.py").write_text("")  # a module, not the package: its `server` cannot be imported
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(lab.REPO)])}
    done = subprocess.run(lab.wizard_argv("demo", "--web", "--port", str(free_port())), env=env,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "error: `demo --web` needs textual-serve, which is not installed" in done.stderr
    assert "pip install 'flannel-wizard[web]'" in done.stderr and "Traceback" not in done.stderr


def test_web_demo_elsewhere_than_loopback_warns_and_a_bad_address_is_an_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the warning is printed, then the bind fails
    done = run_wizard("demo", "--web", "--host", "192.0.2.1", "--port", str(free_port()))
    assert done.returncode == 2
    assert "warning: listening on 192.0.2.1: anyone who can reach this address can open and drive the demo" \
        in done.stderr
    assert "error: cannot serve on 192.0.2.1:" in done.stderr and "pick another --port (or --host)" in done.stderr


def test_web_demo_on_a_taken_port_is_an_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_wizard("demo", "--web", "--port", str(port))
    assert done.returncode == 2
    assert f"error: cannot serve on 127.0.0.1:{port}: " in done.stderr and "Traceback" not in done.stderr
    assert "warning" not in done.stderr  # loopback: nobody else can reach it


def test_loopback_and_urls() -> None:
    assert webdemo.is_loopback("127.0.0.1") and webdemo.is_loopback("::1") and webdemo.is_loopback("localhost")
    assert not webdemo.is_loopback("0.0.0.0") and not webdemo.is_loopback("10.1.2.3")
    assert not webdemo.is_loopback("demo.example.org")
    assert webdemo.url_for("::1", 8000) == "http://[::1]:8000/"
    assert webdemo.url_for("0.0.0.0", 80) == "http://THIS-HOST:80/"
