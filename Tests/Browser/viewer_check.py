"""The viewer's page in a real browser (headless Chromium through WebDriver).

    python3 viewer_check.py live URL OUTDIR FRAMES
        A session in its final phase with FRAMES placed: every panel drawn,
        the counters, ranks and log filled; a parameter set from the form;
        the scan aborted with the button. Screenshot OUTDIR/live.png.
    python3 viewer_check.py simulate URL OUTDIR
        A 6x6 simulated scan started from the page's form (a malformed size
        refused first) and written by the session. Screenshot OUTDIR/simulate.png.
    python3 viewer_check.py unreachable URL OUTDIR
        A viewer pointed at endpoints where no session runs: the page says so
        and what to do. Screenshot OUTDIR/unreachable.png.
    python3 viewer_check.py files URL OUTDIR RECONSTRUCTION SCAN FRAME
        The files page of a viewer started with --files: RECONSTRUCTION (a
        name under that folder) opened from the list, its object, phase and
        probe drawn with the scan positions and tiles on it, its error
        history plotted; then SCAN opened, frame FRAME's histogram and the
        all-photons histogram shown; a name leading outside the folder
        refused on the page. Screenshots OUTDIR/files.png, files-scan.png.

Prints one JSON line of what it saw; exits 1 with the reason when a check fails.
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

PANELS = ["object-amp", "object-phase", "probe", "frame", "stxm", "dpc-x", "dpc-y"]


def browser():
    options = Options()
    # The tests' HTTPS viewers use self-signed certificates.
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1400", "--ignore-certificate-errors"]:
        options.add_argument(a)
    driver = os.environ.get("NS_CHROMEDRIVER", "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=Service(driver))


def open_page(d, url):
    # The address is printed once the viewer listens, but on a loaded machine the first
    # connection can still be refused; a few tries, then the error.
    for attempt in range(20):
        try:
            d.get(url)
            return
        except WebDriverException as e:
            if "ERR_CONNECTION_REFUSED" not in str(e) or attempt == 19:
                raise
            time.sleep(0.5)


def signed_in(d, url):
    """A viewer with a token: its printed address, opened once, sets the cookie; the base address follows."""
    if "?token=" not in url:
        return url
    open_page(d, url)
    if "token=" in d.current_url:
        fail(d, f"the token stayed in the address: {d.current_url}")
    return url.split("?")[0]


def wait(d, what, script, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        value = d.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    fail(d, f"timed out waiting for {what}")


def fill(d, element_id, text):
    field = d.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)
    return field


def fail(d, reason):
    seen = d.execute_script("return JSON.stringify({viewer: window.nsViewer, files: window.nsFiles, "
                            "banner: document.getElementById('banner').textContent, "
                            "reply: (document.getElementById('control-reply') || {}).textContent})")
    d.save_screenshot(os.path.join(OUT, "failure.png"))
    print(json.dumps({"failed": reason, "page": seen}))
    d.quit()
    sys.exit(1)


# Standard deviation of a panel's canvas pixels: 0 for a blank (never drawn or uniform) image.
SPREAD = """
const c = document.querySelector('#' + arguments[0] + ' canvas.image');
if (!c || c.width < 2) return 0;
const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let s = 0, s2 = 0, n = 0;
for (let i = 0; i < px.length; i += 4) { const v = px[i] + px[i + 1] + px[i + 2]; s += v; s2 += v * v; n++; }
return Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
"""


def live(url, frames):
    d = browser()
    open_page(d, url)
    wait(d, "a reconstruction drawn", "return window.nsViewer.recsDrawn >= 2")
    wait(d, f"every one of {frames} frames placed", f"return document.getElementById('count-placed').textContent === '{frames}'"
         f" && document.getElementById('count-expected').textContent === '{frames}'")
    spreads = {p: d.execute_script(SPREAD, p) for p in PANELS}
    blank = [p for p, s in spreads.items() if not s > 0]
    if blank:
        fail(d, f"blank panels: {blank} ({spreads})")
    first = d.execute_script("return window.nsViewer.lastIteration")
    wait(d, "a newer reconstruction", f"return window.nsViewer.lastIteration > {first}")
    rows = d.find_elements(By.CSS_SELECTOR, "#ranks tbody tr")
    if len(rows) != 2:
        fail(d, f"{len(rows)} rows in the ranks table, expected 2")
    wait(d, "log lines", "return document.querySelectorAll('#log div').length > 0")
    log = d.find_element(By.ID, "log").text
    if "solver started" not in log:
        fail(d, f"the log does not show the solver's start: {log[-500:]}")
    state = d.find_element(By.ID, "state").text
    d.save_screenshot(os.path.join(OUT, "live.png"))

    # A live parameter from the form built from the session's declarations.
    wait(d, "the parameter form", "return document.getElementById('param-publish_every') !== null")
    fill(d, "param-publish_every", "1")
    d.find_element(By.ID, "btn-set").click()
    wait(d, "the set reply", "return document.getElementById('control-reply').textContent === 'set: done'", 15)
    # A value out of the declared range is refused by the session, and the page says why.
    fill(d, "param-publish_every", "-3")
    d.execute_script("document.getElementById('param-publish_every').removeAttribute('min')")
    d.find_element(By.ID, "btn-set").click()
    wait(d, "the refusal", "return document.getElementById('control-reply').textContent.includes('publish_every')", 15)
    refusal = d.find_element(By.ID, "control-reply").text

    d.find_element(By.ID, "btn-abort").click()
    wait(d, "the abort reply", "return document.getElementById('control-reply').textContent === 'abort: done'", 15)
    wait(d, "the scan closed", "return document.getElementById('scan').textContent === 'no scan open'", 30)
    wait(d, "the abort in the log", "return document.getElementById('log').textContent.includes('aborted')", 30)
    stats = json.loads(d.execute_script("return fetch('/api/stats').then(r => r.text())"))
    print(json.dumps({"spreads": spreads, "state": state, "refusal": refusal, "stats": stats,
                      "recs": d.execute_script("return window.nsViewer.recsDrawn")}))
    d.quit()


def simulate(url):
    d = browser()
    open_page(d, url)
    wait(d, "the session's detector endpoint", "return window.nsViewer.status && window.nsViewer.status.detector")
    fill(d, "sim-scan", "6x6; rm -rf /")
    d.find_element(By.ID, "btn-simulate").click()
    wait(d, "the refusal", "return document.getElementById('simulate-reply').textContent.includes('is not RxC')", 15)
    refusal = d.find_element(By.ID, "simulate-reply").text
    fill(d, "sim-scan", "6x6")
    fill(d, "sim-rate", "50")
    d.find_element(By.ID, "btn-simulate").click()
    wait(d, "the simulator started", "return document.getElementById('simulate-reply').textContent.startsWith('started:')", 15)
    started = d.find_element(By.ID, "simulate-reply").text
    wait(d, "the scan written", "return document.getElementById('log').textContent.includes(' done: ')", 240)
    wait(d, "the simulator finished", "return document.getElementById('simulate-reply').textContent.endsWith(': sent')", 30)
    d.save_screenshot(os.path.join(OUT, "simulate.png"))
    print(json.dumps({"refusal": refusal, "started": started}))
    d.quit()


def unreachable(url):
    d = browser()
    open_page(d, url)
    wait(d, "the unreachable banner", "const b = document.getElementById('banner');"
         "return !b.classList.contains('hidden') && b.textContent.includes('No status from the session')", 30)
    banner = d.find_element(By.ID, "banner").text
    # The control port is not there either: a request says so instead of hanging.
    d.find_element(By.ID, "btn-abort").click()
    wait(d, "the control error", "return document.getElementById('control-reply').textContent.includes('did not answer')", 15)
    d.save_screenshot(os.path.join(OUT, "unreachable.png"))
    print(json.dumps({"banner": banner, "reply": d.find_element(By.ID, "control-reply").text}))
    d.quit()


def files(url, reconstruction, scan, frame):
    d = browser()
    url = signed_in(d, url)
    open_page(d, url + "files")
    wait(d, "the file list", "return window.nsFiles.listed >= 2")
    row = f"return document.querySelector('#file-list tr[data-name=\"' + arguments[0] + '\"]')"
    d.execute_script(row, reconstruction).click()
    wait(d, "the object drawn", "return window.nsFiles.objectDrawn && window.nsFiles.positionsDrawn > 0")
    spreads = {p: d.execute_script(SPREAD, p) for p in ["object-amp", "object-phase", "probe"]}
    blank = [p for p, v in spreads.items() if not v > 0]
    if blank:
        fail(d, f"blank panels: {blank} ({spreads})")
    metadata = d.find_element(By.ID, "metadata").text
    opened = d.execute_script("return JSON.parse(JSON.stringify(window.nsFiles))")
    d.save_screenshot(os.path.join(OUT, "files.png"))

    d.execute_script(row, scan).click()
    wait(d, "the scan's frame and photons", "return window.nsFiles.opened === arguments[0] && window.nsFiles.frameIndex === 0"
         " && window.nsFiles.photonPixels > 0".replace("arguments[0]", json.dumps(scan)))
    fill(d, "frame-index", str(frame))
    d.find_element(By.ID, "btn-frame").click()
    wait(d, f"frame {frame}", f"return window.nsFiles.frameIndex === {frame}")
    spread = d.execute_script(SPREAD, "frame")
    if not spread > 0:
        fail(d, "the frame panel is blank")
    d.save_screenshot(os.path.join(OUT, "files-scan.png"))
    scanned = d.execute_script("return JSON.parse(JSON.stringify(window.nsFiles))")

    # A name that leads outside the folder: refused, and the page says why.
    d.execute_script("openFile('../' + arguments[0])", scan)
    wait(d, "the refusal", "return (window.nsFiles.error || '').includes(\"without '..'\")", 15)
    print(json.dumps({"reconstruction": opened, "scan": scanned, "metadata": metadata, "refusal": d.execute_script("return window.nsFiles.error")}))
    d.quit()


if __name__ == "__main__":
    mode, url, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(OUT, exist_ok=True)
    if mode == "live":
        live(url, int(sys.argv[4]))
    elif mode == "simulate":
        simulate(url)
    elif mode == "files":
        files(url, sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        unreachable(url)
