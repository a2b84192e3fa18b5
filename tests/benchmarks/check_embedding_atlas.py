"""Check: Embedding Atlas opens what ``clipscape export --parquet`` writes (issue 11).

Usage: python tests/benchmarks/check_embedding_atlas.py [--venv /tmp/atlas-venv] [--out /tmp/x.parquet]
       [--port 0] [--timeout 600] [--screenshot PNG]

1. makes a virtual environment at --venv, if it has no ``embedding-atlas`` yet, and
   ``pip install embedding-atlas`` into it (PyPI must be reachable that once);
2. exports the demo photos: ``clipscape export resources/demo_images --model demo --parquet OUT
   --thumbnails --neighbors 10 --classes red,green,…`` with this checkout's console script and a
   fresh cache;
3. starts ``embedding-atlas OUT --vector embedding --image image --neighbors neighbors`` headless
   (its own UMAP of our vectors; nothing it does needs the network), on --port (0: a free one);
4. polls its server until it answers, then reads what it serves: ``/data/metadata.json`` (the
   columns the page is told to use: projection, image, neighbors), ``/data/query`` (the DuckDB
   table the page queries: rows, column types, projection, thumbnails, neighbours), ``/data/dataset.parquet``
   and the page itself; with --screenshot also renders the page in headless Chromium, if one is
   installed, to a PNG (its map needs WebGPU with shader-f16, which a headless Chromium without
   a GPU lacks: the page then says "WebGPU is unavailable" there, and the rest renders);
5. stops the server and prints one JSON line of what it saw; exits 1 naming each failed check.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_IMAGES = REPO / "resources" / "demo_images"
CLASSES = "red,green,blue,yellow,purple,orange"
NEIGHBORS = 10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", default="/tmp/atlas-venv", help="where embedding-atlas is (or gets) installed")
    ap.add_argument("--out", default="/tmp/x.parquet", help="the Parquet file to export and open")
    ap.add_argument("--port", type=int, default=0, help="the server's port (0: a free one)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for the server (UMAP runs first)")
    ap.add_argument("--screenshot", default=None, metavar="PNG", help="also render the page to this PNG")
    args = ap.parse_args()

    seen: dict = {}
    failed: list[str] = []
    atlas = ensure_atlas(Path(args.venv), seen)
    rows = export(Path(args.out), seen)
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="atlas-check-") as work:
        log = Path(work) / "embedding-atlas.log"
        server = start(atlas, Path(args.out), port, log)
        try:
            base = f"http://127.0.0.1:{port}"
            metadata = wait_for(server, base + "/data/metadata.json", args.timeout, seen)
            if metadata is None:
                failed.append("server: did not answer (log tail: " + tail(log) + ")")
            else:
                check_served(base, metadata, rows, seen, failed)
                if args.screenshot:
                    screenshot(base, atlas, rows, Path(args.screenshot), seen, failed)
        finally:
            stop(server)
        seen["server_exit"] = server.returncode
    seen["failed"] = failed
    print(json.dumps(seen, sort_keys=True))
    return 1 if failed else 0


# --- 1, 2: embedding-atlas and the export -------------------------------------------------------

def ensure_atlas(venv: Path, seen: dict) -> Path:
    """The embedding-atlas console script of ``venv``, installed there first if it is missing."""
    atlas = venv / "bin" / "embedding-atlas"
    if not atlas.exists():
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "embedding-atlas"],
                       check=True)
        seen["installed"] = True
    version = subprocess.run([str(atlas), "--version"], capture_output=True, text=True, check=True)
    seen["embedding_atlas"] = version.stdout.strip().split()[-1]
    return atlas


def export(out: Path, seen: dict) -> int:
    """Export the demo photos to ``out`` with this checkout's ``clipscape``; the rows written."""
    clipscape = Path(sys.executable).with_name("clipscape")
    if not clipscape.exists():
        clipscape = REPO / ".venv" / "bin" / "clipscape"
    with tempfile.TemporaryDirectory(prefix="atlas-check-cache-") as cache:
        started = time.perf_counter()
        proc = subprocess.run([str(clipscape), "export", str(DEMO_IMAGES), "--model", "demo", "--parquet", str(out),
                               "--thumbnails", "--neighbors", str(NEIGHBORS), "--classes", CLASSES,
                               "--cache-dir", cache, "--json", "--quiet"],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"clipscape export failed ({proc.returncode}):\n{proc.stderr}")
    result = json.loads(proc.stdout)
    seen["export"] = {"rows": result["rows"], "parquet": result["parquet"], "bytes": out.stat().st_size,
                      "seconds": round(time.perf_counter() - started, 1)}
    return int(result["rows"])


# --- 3, 4, 5: the server ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(atlas: Path, parquet: Path, port: int, log: Path) -> subprocess.Popen:
    """embedding-atlas on ``parquet``, in its own process group, offline, its output to ``log``."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", NO_COLOR="1")
    argv = [str(atlas), str(parquet), "--vector", "embedding", "--image", "image", "--neighbors", "neighbors",
            "--host", "127.0.0.1", "--port", str(port), "--no-auto-port", "--umap-random-state", "0"]
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def wait_for(server: subprocess.Popen, url: str, timeout: float, seen: dict) -> dict | None:
    """The JSON at ``url`` once the server answers; None if it exits or ``timeout`` passes first."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if server.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                seen["server_start_seconds"] = round(time.perf_counter() - started, 1)
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    return None


def query(base: str, sql: str):
    """The rows of ``sql`` run by the server's DuckDB on its table ``dataset`` (what the page asks)."""
    request = urllib.request.Request(base + "/data/query", data=json.dumps({"sql": sql, "type": "json"}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def check_served(base: str, metadata: dict, rows: int, seen: dict, failed: list[str]) -> None:
    props = metadata.get("props", {}).get("data", {})
    seen["metadata"] = props
    projection = props.get("projection") or {}
    px, py = projection.get("x"), projection.get("y")
    if not (px and py):
        failed.append("metadata: no projection columns")
    if props.get("image") != "image":
        failed.append(f"metadata: image column is {props.get('image')!r}")
    if props.get("neighbors") != "neighbors":
        failed.append(f"metadata: neighbors column is {props.get('neighbors')!r}")

    types = {c["column_name"]: c["column_type"] for c in query(base, "DESCRIBE dataset")}
    seen["columns"] = types
    for name, kind in (("path", "VARCHAR"), ("x", "FLOAT"), ("y", "FLOAT"), ("class", "VARCHAR"),
                       ("probability", "FLOAT"), ("embedding", "FLOAT[]"), ("image", "BLOB"),
                       ("neighbors", "STRUCT(ids BIGINT[], distances FLOAT[])")):
        if types.get(name) != kind:
            failed.append(f"column {name}: {types.get(name)!r}, expected {kind}")
    if px not in types or py not in types:
        failed.append(f"columns: no {px!r}/{py!r} (the projection of the embeddings)")
        return

    [stats] = query(base, f"""
        SELECT count(*) AS rows, count(DISTINCT path) AS paths, count(image) AS images,
               min(octet_length(image)) AS image_bytes_min, max(octet_length(image)) AS image_bytes_max,
               sum(CASE WHEN image[1:3] = '\\xFF\\xD8\\xFF'::BLOB THEN 1 ELSE 0 END) AS jpegs,
               min(len(neighbors.ids)) AS k_min, max(len(neighbors.ids)) AS k_max,
               max(list_max(neighbors.ids)) AS id_max,
               sum(CASE WHEN list_contains(neighbors.ids, "__row_index__") THEN 1 ELSE 0 END) AS self_neighbours,
               min("{px}") AS x_min, max("{px}") AS x_max, stddev("{px}") AS x_sd, stddev("{py}") AS y_sd,
               len(first(embedding)) AS dim
        FROM dataset""")
    seen["table"] = stats
    if stats["rows"] != rows or stats["paths"] != rows:
        failed.append(f"rows: served {stats['rows']} ({stats['paths']} paths), exported {rows}")
    if stats["images"] != rows or stats["jpegs"] != rows:
        failed.append(f"images: {stats['images']} thumbnails, {stats['jpegs']} JPEGs, of {rows} rows")
    if (stats["k_min"], stats["k_max"]) != (NEIGHBORS, NEIGHBORS) or stats["id_max"] >= rows or stats["self_neighbours"]:
        failed.append(f"neighbors: k {stats['k_min']}..{stats['k_max']}, max id {stats['id_max']}, "
                      f"{stats['self_neighbours']} rows their own neighbour")
    if not all(isinstance(stats[k], (int, float)) and math.isfinite(stats[k]) and stats[k] > 0
               for k in ("x_sd", "y_sd")):
        failed.append(f"projection: not spread out ({stats['x_sd']}, {stats['y_sd']})")
    pagerank = props.get("importance")
    if pagerank:  # Embedding Atlas computes it from our neighbour graph (--image given)
        [pr] = query(base, f'SELECT count("{pagerank}") AS n, sum("{pagerank}") AS total FROM dataset')
        seen["pagerank"] = pr
        if pr["n"] != rows or not math.isclose(pr["total"], 1.0, rel_tol=1e-3):
            failed.append(f"pagerank from our neighbours: {pr}")

    with urllib.request.urlopen(base + "/data/dataset.parquet", timeout=60) as response:
        data = response.read()
    seen["dataset_parquet_bytes"] = len(data)
    if data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        failed.append("/data/dataset.parquet: not a Parquet file")
    with urllib.request.urlopen(base + "/", timeout=30) as response:
        page = response.read().decode("utf-8", "replace")
    seen["page_title"] = page.split("<title>")[1].split("</title>")[0] if "<title>" in page else None
    if seen["page_title"] != "Embedding Atlas":
        failed.append(f"page: title {seen['page_title']!r}")


_PLAYWRIGHT = """
import sys, time
from playwright.sync_api import sync_playwright
browser, url, png, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with sync_playwright() as p:
    b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = b.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.wait_for_selector(f"text={rows} / {rows} points", timeout=120000)
    time.sleep(3)
    webgpu = page.evaluate("async () => !!navigator.gpu && !!(await navigator.gpu.requestAdapter())")
    page.get_by_title("Card view").first.click()
    time.sleep(3)
    page.screenshot(path=png)
    print(f"webgpu={webgpu} embedding_view={'WebGPU is unavailable' not in page.inner_text('body')}")
    b.close()
"""


def screenshot(base: str, atlas: Path, rows: int, png: Path, seen: dict, failed: list[str]) -> None:
    """The page rendered by headless Chromium, its table in card view (thumbnails), to ``png``.

    Uses Playwright from the Embedding Atlas venv (``pip install playwright``; it drives the system
    Chromium, so no browser download) to wait until the page shows all rows; without it, Chromium's
    own --screenshot, which may catch the page still loading.
    """
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    if browser is None:
        seen["screenshot"] = "no chromium installed (apt-get install chromium)"
        return
    python = atlas.with_name("python")
    has_playwright = subprocess.run([str(python), "-c", "import playwright"], capture_output=True).returncode == 0
    with tempfile.TemporaryDirectory(prefix="atlas-check-chromium-") as profile:
        if has_playwright:
            argv = [str(python), "-c", _PLAYWRIGHT, browser, base + "/", str(png), str(rows)]
        else:
            argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=30000",
                    f"--screenshot={png}", base + "/"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    if proc.returncode != 0 or not png.exists():
        failed.append(f"screenshot: exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    else:
        seen["screenshot"] = {"png": str(png), "bytes": png.stat().st_size, "with": "playwright" if has_playwright
                              else "chromium --screenshot", "page": proc.stdout.strip()}


def stop(server: subprocess.Popen) -> None:
    """Stop the server's process group: SIGINT (what Ctrl+C sends), then SIGKILL if it lingers."""
    if server.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(log: Path, chars: int = 600) -> str:
    try:
        return log.read_text(errors="replace")[-chars:].replace("\n", " | ")
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    sys.exit(main())
