"""A real browser (Debian's headless ``chromium``) on what a user sees: the Dagster UI that
`dagster dev` serves shows the previews of a materialized video, and the mp4 plays.

Chromium is driven through its DevTools protocol over ``--remote-debugging-pipe`` (JSON
messages on fds 3 and 4), so no websocket library or driver download is needed. Markdown
metadata longer than 1000 characters sits behind a "[Show Markdown]" dialog in the UI, so the
test clicks it, as a user would, and checks the image in the dialog decoded.

Without chromium the tests skip, except under ``CI=true`` where they fail: CI must run them
(``.ci/run`` installs the package).
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import io
import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidgen_pipeline.core.audio import ffmpeg_exe
from vidgen_pipeline.core.media import probe_video, read_frames
from vidgen_pipeline_tests.conftest import VIDGEN, cli_env, free_port, graphql

# conftest's `dagster dev` (port, home), shared with test_webserver (on one xdist worker):
# the CLI writes a video into its instance, the UI shows it.
pytestmark = [pytest.mark.slow, pytest.mark.browser]

PROMPT = "A paper boat sails down a rainy street. It spins in a puddle."
DURATION_S, FPS, WIDTH, HEIGHT = 2.0, 8.0, 128, 72
WAIT_S = 45  # every wait below is bounded by this


def chromium_binary() -> str:
    binary = shutil.which("chromium")
    if binary:
        return binary
    reason = "Debian's `chromium` is not on PATH (apt-get install chromium; .ci/run does)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: the browser tests must run, but {reason}")
    pytest.skip(reason)


class Chromium:
    """Headless chromium with a DevTools session on one page, spoken to over a pipe."""

    def __init__(self, binary: str, profile: Path, window: str = "1400,1000"):
        to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, from_chrome_w = os.pipe()
        # Above 9, so that moving them onto 3 and 4 in the child cannot clobber one another.
        fd_in, fd_out = (
            fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        args = [
            "--headless=new",
            "--no-sandbox",  # root in a container: the setuid sandbox is not available
            "--disable-gpu",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            "--no-first-run",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            f"--window-size={window}",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # DevTools reads commands from fd 3 and writes replies to fd 4.
        script = f'exec "$0" "$@" 3<&{fd_in} 4>&{fd_out} {fd_in}<&- {fd_out}>&-'
        self.log = open(profile.with_suffix(".log"), "w")
        self.proc = subprocess.Popen(
            ["bash", "-c", script, binary, *args],  # dash takes single-digit fds only
            pass_fds=(fd_in, fd_out),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # chromium forks renderer, GPU and utility processes
        )
        os.close(fd_in)
        os.close(fd_out)
        self._buffer = b""
        self._next_id = 0
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
            self.session = attached["sessionId"]
        except BaseException:
            self.close()
            raise

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, wait=WAIT_S
    ):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + wait
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._next_id:  # anything else is an event: not needed
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self, deadline: float, method: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome_r], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError(f"chromium did not answer {method} in time")
            chunk = os.read(self._from_chrome_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe ({method}); see {self.log.name}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def goto(self, url: str) -> None:
        """Open ``url`` and wait until its document has loaded (not the one before it)."""
        self.js("window.__leaving = true")
        reply = self.call("Page.navigate", {"url": url}, session=self.session)
        if reply.get("errorText"):
            raise RuntimeError(f"{url}: {reply['errorText']}")
        self.wait_for("!window.__leaving && document.readyState === 'complete'", f"{url} loads")

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str):
        """Poll until the expression is truthy; its value."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"not within {WAIT_S} s: {what}")

    def click(self, point: dict) -> None:
        """A left click at a point of the viewport, as a mouse makes it."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            event = {"type": kind, "x": point["x"], "y": point["y"]}
            if kind != "mouseMoved":
                event |= {"button": "left", "clickCount": 1}
            self.call("Input.dispatchMouseEvent", event, session=self.session)

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=self.session)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", wait=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        for fd in (self._to_chrome_w, self._from_chrome_r):
            os.close(fd)
        self.log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = chromium_binary()
    chrome = Chromium(binary, tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield chrome
    finally:
        chrome.close()


@pytest.fixture(scope="module")
def made(webserver) -> Path:
    """One prompt materialized by the CLI into the instance the UI serves, narrated (by
    espeak-ng) over a music bed: its mp4, with one AAC track."""
    _, home = webserver
    music = home / "bed.wav"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=2"]
        + ["-ac", "2", str(music)],
        check=True,
    )
    args = ["--duration", DURATION_S, "--width", WIDTH, "--height", HEIGHT, "--fps", FPS]
    if shutil.which("espeak-ng"):
        args += ["--narration"]
    args += ["--music", music]
    done = subprocess.run(
        [*VIDGEN, "generate", PROMPT, *map(str, args)],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ui(browser, webserver, made) -> tuple[Chromium, int]:
    """The browser on the UI's origin once the code location has loaded, having told the UI
    not to pop up its community sign-up dialog (shown once per browser on localhost; it would
    cover the page); and the UI's port."""
    port, _ = webserver
    deadline = time.monotonic() + 60
    while not graphql(port, "{ assetNodes { id } }")["assetNodes"]:
        if time.monotonic() > deadline:
            pytest.fail("the code location did not load within 60 s")
        time.sleep(1)
    browser.goto(f"http://127.0.0.1:{port}/server_info")
    browser.js("localStorage.setItem('communityNux', JSON.stringify('1'))")
    return browser, port


METADATA = """
{ assetOrError(assetKey: {path: ["%s"]}) { ... on Asset {
    assetMaterializations(partitions: ["%s"]) {
      metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } } } } }
"""

# Where the "[Show Markdown]" link of the metadata row labelled LABEL is on screen, or null.
SHOW_MARKDOWN_AT = """
(() => {
  for (const row of document.querySelectorAll('tr')) {
    const cells = row.querySelectorAll('td');
    if (!cells.length || cells[0].textContent.trim() !== %s) continue;
    const link = [...row.querySelectorAll('*')].reverse()  // the innermost one
      .find(e => e.textContent.trim() === '[Show Markdown]');
    if (!link) continue;
    link.scrollIntoView({block: 'center'});
    const box = link.getBoundingClientRect();
    return {x: box.x + box.width / 2, y: box.y + box.height / 2};
  }
  return null;
})()
"""

# The images in the open dialog that have decoded: [{mime, width, height, shownWidth}].
DIALOG_IMAGES = """
[...document.querySelectorAll('.bp5-dialog img, [role=dialog] img')]
  .filter(i => i.src.startsWith('data:image/') && i.complete && i.naturalWidth > 0)
  .map(i => ({mime: i.src.slice(5, i.src.indexOf(';')), width: i.naturalWidth,
              height: i.naturalHeight, shownWidth: i.getBoundingClientRect().width}))
"""

# How many frames the browser's own image decoder finds in the dialog's image.
DECODED_FRAMES = """
(async () => {
  const img = [...document.querySelectorAll('.bp5-dialog img, [role=dialog] img')]
    .find(i => i.src.startsWith('data:image/'));
  const [head, b64] = img.src.split(',');
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const decoder = new ImageDecoder({data: bytes, type: head.slice(5, head.indexOf(';'))});
  await decoder.tracks.ready;
  await decoder.completed;
  const track = decoder.tracks.selectedTrack;
  return {animated: track.animated, frames: track.frameCount};
})()
"""

CLOSE_DIALOG = """
(() => { const b = [...document.querySelectorAll('.bp5-dialog button, [role=dialog] button')]
           .find(e => e.textContent.trim() === 'Close');
         if (b) b.click(); return !!b; })()
"""


def decode_markdown_image(markdown: str) -> Image.Image:
    data = markdown.split(";base64,", 1)[1].split(")", 1)[0]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def markdown_images(port: int, asset: str, partition: str) -> dict[str, str]:
    data = graphql(port, METADATA % (asset, partition))
    [event] = data["assetOrError"]["assetMaterializations"]
    return {e["label"]: e["mdStr"] for e in event["metadataEntries"] if e.get("mdStr")}


@pytest.mark.parametrize(
    ("asset", "required"),
    [("final_video", {"poster", "preview"}), ("keyframes", {"contact_sheet"})],
)
def test_the_asset_page_in_the_dagster_ui_shows_its_preview_images(
    ui, made, asset, required, tmp_path
):
    browser, port = ui
    partition = made.stem
    entries = markdown_images(port, asset, partition)
    # Every markdown image the asset records (poster, animated preview, contact sheet...).
    labels = {label for label, md in entries.items() if "](data:image/" in md}
    assert required <= labels, entries.keys()
    # The Partitions tab with this partition selected: its latest materialization's metadata.
    url = f"http://127.0.0.1:{port}/assets/{asset}?view=partitions&partition={partition}"
    browser.goto(url)
    browser.wait_for(
        "document.body && document.body.innerText.includes('Latest materialization')"
        f" && document.body.innerText.includes({json.dumps(partition)})"
        " && document.body.innerText.includes('[Show Markdown]')",
        f"{url} shows the partition's markdown metadata",
    )
    for label in sorted(labels):
        browser.click(browser.wait_for(SHOW_MARKDOWN_AT % json.dumps(label), f"{label}'s link"))
        images = browser.wait_for(DIALOG_IMAGES, f"the {label} image decodes in the dialog")
        expected_mime = entries[label].split("](data:", 1)[1].split(";", 1)[0]
        [image] = images
        print(f"{asset}/{label}: {image}")
        assert image["mime"] == expected_mime
        assert image["width"] >= 64 and image["height"] >= 32 and image["shownWidth"] > 0
        if expected_mime in ("image/webp", "image/gif"):  # an animated preview: all of it
            stored = decode_markdown_image(entries[label])
            decoded = browser.js(DECODED_FRAMES)
            assert decoded == {"animated": stored.n_frames > 1, "frames": stored.n_frames}
        shot = browser.screenshot(tmp_path / f"{asset}-{label}.png")
        print(f"screenshot: {shot}")
        assert browser.js(CLOSE_DIALOG)
        browser.wait_for(f"!({DIALOG_IMAGES}).length", "the dialog closes")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


PLAYER = """<!doctype html>
<html><head><title>loading</title></head><body>
<video id="v" src="video.mp4" muted playsinline preload="auto"></video>
<pre id="out">loading</pre>
<script>
const v = document.getElementById('v');
window.report = null;
const fail = (why) => { window.report = {error: why}; };
v.addEventListener('error', () => fail('MediaError ' + (v.error && v.error.code)));
const reached4 = () => new Promise(done => {
  const tick = () => v.readyState === 4 ? done() : setTimeout(tick, 25);
  tick();
});
reached4().then(() => {
  const report = {readyState: v.readyState, duration: v.duration,
                  width: v.videoWidth, height: v.videoHeight,
                  canPlay: v.canPlayType('video/mp4; codecs="avc1.64001e"'), frames: []};
  // Play it through; for each frame put on screen, what the decoder drew: its media time
  // and mean RGB, to compare with ffmpeg's decode of the same frame.
  const canvas = document.createElement('canvas');
  canvas.width = v.videoWidth; canvas.height = v.videoHeight;
  const g = canvas.getContext('2d', {willReadFrequently: true});
  const onFrame = (now, frame) => {
    g.drawImage(v, 0, 0);
    const px = g.getImageData(0, 0, canvas.width, canvas.height).data;
    const mean = [0, 0, 0];
    for (let i = 0; i < px.length; i += 4) for (let k = 0; k < 3; k++) mean[k] += px[i + k];
    report.frames.push({t: frame.mediaTime, mean: mean.map(s => s / (px.length / 4))});
    if (!v.ended) v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  v.addEventListener('ended', () => {
    report.endedAt = v.currentTime;
    report.audioBytes = v.webkitAudioDecodedByteCount;
    window.report = report;
    document.getElementById('out').textContent = JSON.stringify(report);
    document.title = 'readyState=' + report.readyState + ' duration=' + report.duration;
  });
  v.play().catch(e => fail('play() refused: ' + e));
});
</script></body></html>
"""


def test_the_final_mp4_plays_in_chromium(browser, made, tmp_path):
    video = made
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(video, site / "video.mp4")
    (site / "index.html").write_text(PLAYER)
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        report = browser.wait_for("window.report", "the <video> plays to its end")
    finally:
        server.shutdown()
        server.server_close()
    shown = report.pop("frames", [])
    print(f"chromium: {report}, {len(shown)} frames drawn")
    assert "error" not in report, f"chromium cannot play the mp4: {report['error']}"
    assert report["readyState"] == 4 and report["canPlay"] == "probably"
    length = probe_video(video).duration_s  # the narration may have lengthened it
    assert length >= DURATION_S
    assert abs(report["duration"] - length) <= 1 / FPS + 1e-6
    assert abs(report["endedAt"] - length) <= 1 / FPS + 1e-6
    assert report["audioBytes"] > 0  # chromium decoded the AAC track too
    assert (report["width"], report["height"]) == (WIDTH, HEIGHT)
    # What the browser drew matches ffmpeg's decode frame by frame (colour conversion aside):
    # it decoded the H.264 and played it to the end, it did not just parse the container.
    frames = list(read_frames(video))
    means = np.array([f.reshape(-1, 3).mean(axis=0) for f in frames])
    assert len(shown) >= len(frames) // 2, f"only {len(shown)} of {len(frames)} frames shown"
    indices = [min(round(s["t"] * FPS), len(frames) - 1) for s in shown]
    assert indices[0] <= 1 and indices[-1] >= len(frames) - 2, indices
    for index, seen in zip(indices, shown, strict=True):
        assert np.allclose(seen["mean"], means[index], atol=6), (index, seen, means.round(1))


SOUND = """
{ assetOrError(assetKey: {path: ["final_video"]}) { ... on Asset {
    assetMaterializations(partitions: ["%s"]) {
      metadataEntries { label ... on JsonMetadataEntry { jsonString } } } } } }
"""


def test_the_ui_shows_what_is_in_the_sound_track(ui, made):
    browser, port = ui
    partition = made.stem
    [event] = graphql(port, SOUND % partition)["assetOrError"]["assetMaterializations"]
    entries = {e["label"]: e.get("jsonString") for e in event["metadataEntries"]}
    sound = json.loads(entries["sound"])
    assert sound["music"].startswith("inputs/") and "music_lufs" in sound["levels"]
    if shutil.which("espeak-ng"):
        assert sound["voice"].startswith("espeak") and sound["levels"]["duck_db"] < 0
    url = f"http://127.0.0.1:{port}/assets/final_video?view=partitions&partition={partition}"
    browser.goto(url)
    browser.wait_for(
        "document.body && document.body.innerText.includes('Latest materialization')"
        " && [...document.querySelectorAll('td')].some(td => td.textContent.trim() === 'sound')"
        " && document.body.innerText.includes('sound_track')",
        f"{url} shows the sound metadata and the track's path",
    )
