"""Pages watching one live scan: publish-to-draw latency and memory.

    python3 viewer_bench.py URL PAGES

Opens PAGES headless Chromium pages on the viewer at URL and keeps them
until the session ends (the page's banner says the session is gone), sampling
every 2 s the viewer's resident memory (its /api/stats), each page's
JavaScript heap and the largest Chromium renderer's resident memory. Prints
one JSON object.
"""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def page():
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1400",
              "--enable-precise-memory-info"]:
        o.add_argument(a)
    return webdriver.Chrome(options=o, service=Service(os.environ.get("NS_CHROMEDRIVER", "/usr/bin/chromedriver")))


def renderer_rss_mb():
    largest = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"--type=renderer" not in f.read():
                    continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        largest = max(largest, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return largest


def stats(url):
    with urllib.request.urlopen(url + "api/stats", timeout=5) as r:
        return json.loads(r.read())


def main():
    url, count = sys.argv[1], int(sys.argv[2])
    pages = [page() for _ in range(count)]
    for p in pages:
        p.get(url)
    began = time.time()
    peak = {"viewer_mb": 0.0, "page_heap_mb": 0.0, "renderer_mb": 0.0}
    last = {}
    seen_scan = False
    while time.time() - began < 1800:
        try:
            last = stats(url)
        except OSError:
            break  # the viewer ended with its session
        peak["viewer_mb"] = max(peak["viewer_mb"], last.get("resident_mb", 0))
        for p in pages:
            heap = p.execute_script("return performance.memory ? performance.memory.usedJSHeapSize : 0") / 1e6
            peak["page_heap_mb"] = max(peak["page_heap_mb"], heap)
        peak["renderer_mb"] = max(peak["renderer_mb"], renderer_rss_mb())
        scan = pages[0].execute_script("return window.nsViewer.status && window.nsViewer.status.scan_id")
        seen_scan = seen_scan or bool(scan)
        if seen_scan and not scan:
            break
        time.sleep(2)
    drawn = [p.execute_script("return window.nsViewer.recsDrawn") for p in pages]
    for p in pages:
        p.quit()
    print(json.dumps({"pages": count, "seconds": round(time.time() - began, 1), "recs_drawn_per_page": drawn,
                      "draws_reported": last.get("draws"), "draw_latency_median_s": last.get("draw_latency_median_s"),
                      "draw_latency_p99_s": last.get("draw_latency_p99_s"), "draw_latency_max_s": last.get("draw_latency_max_s"),
                      "images_replaced_unsent": last.get("images_replaced_unsent"),
                      "viewer_peak_mb": round(peak["viewer_mb"], 1), "page_heap_peak_mb": round(peak["page_heap_mb"], 1),
                      "renderer_peak_mb": round(peak["renderer_mb"], 1)}))


if __name__ == "__main__":
    main()
