"""Open every example workflow in a running ComfyUI's own front-end (headless Chromium), report
node types it does not know and errors the page logs while loading, and write the workflow's
thumbnail (``example_workflows/NAME.jpg``) from a screenshot of the canvas.

    python tools/workflow_thumbnails.py --url http://127.0.0.1:8188 [--check-only] [--only 07]
    python tools/workflow_thumbnails.py --check-only --files tests/fixtures/workflows/07_saved_before_verification.json

A workflow saved before a node gained inputs must load with every saved value in place; the
widgets added since are listed with the values the front-end gave them (their defaults).

Dev-only: needs ``pip install playwright`` and a system Chromium (``apt-get install chromium``;
no browser is downloaded). Start ComfyUI with every pack the workflows use (Impact Pack,
Inpaint-CropAndStitch), or their nodes are reported missing.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import urllib.request
from pathlib import Path

WORKFLOWS = Path(__file__).resolve().parents[1] / "example_workflows"
WIDTH = 1200
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8188")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--check-only", action="store_true", help="report, write no thumbnail")
    ap.add_argument("--only", default="", help="only workflows whose name starts with this")
    ap.add_argument("--files", nargs="*", type=Path, default=None, help="check these workflow files instead")
    args = ap.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright

    with urllib.request.urlopen(f"{args.url}/object_info") as r:
        known = set(json.load(r))
        known |= {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}  # the front-end's own
    files = args.files or sorted(f for f in WORKFLOWS.glob("*.json") if f.name.startswith(args.only))
    problems = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1800, "height": 1000}, device_scale_factor=1)
        page.goto(args.url, wait_until="networkidle")
        page.wait_for_function("() => window.app && window.app.graph", timeout=120_000)
        page.evaluate("""async () => {  // a clean picture: no minimap or canvas info, text at any zoom
            const s = window.app.extensionManager.setting;
            for (const [k, v] of [["Comfy.Minimap.Visible", false], ["Comfy.Graph.CanvasInfo", false],
                                  ["LiteGraph.Canvas.MinFontSizeForLOD", 0]]) {
                try { await s.set(k, v); } catch (e) { /* an older front-end without this setting */ }
            }
        }""")
        for f in files:
            data = json.loads(f.read_text())
            errors: list[str] = []
            listener = lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None  # noqa: E731
            page.on("console", listener)
            page.evaluate("async (d) => { await window.app.loadGraphData(d); }", data)
            page.wait_for_timeout(800)
            page.keyboard.press("Escape")  # a dialog the load opened, if any
            loaded = page.evaluate("() => window.app.graph.serialize().nodes")
            page.remove_listener("console", listener)
            missing = sorted({n["type"] for n in data["nodes"]} - known)
            want = {n["id"]: n.get("widgets_values", []) for n in data["nodes"]}
            got = {n["id"]: n.get("widgets_values", []) for n in loaded}
            changed = [f"{n['type']} {got[n['id']]} != {want.get(n['id'])}" for n in loaded
                       if got[n["id"]][:len(want.get(n["id"], []))] != want.get(n["id"])]
            added = [f"{n['type']} +{got[n['id']][len(want.get(n['id'], [])):]}" for n in loaded
                     if len(got[n["id"]]) > len(want.get(n["id"], []))]
            ok = not missing and not changed and len(loaded) == len(data["nodes"])
            problems += not ok
            print(f"{f.stem}: {len(loaded)}/{len(data['nodes'])} nodes loaded, "
                  f"{'widget values as saved' if not changed else 'widget values differ: ' + '; '.join(changed)}"
                  + (f", missing {', '.join(missing)}" if missing else "")
                  + (f"; widgets added since it was saved: {'; '.join(added)}" if added else "")
                  + (f"; the page logged {len(errors)} error(s): {errors[0].splitlines()[0]}" if errors else ""))
            if args.check_only:
                continue
            page.locator("#graph-canvas").click(position={"x": 5, "y": 5})
            page.keyboard.press(".")  # the front-end's "fit view"
            page.wait_for_timeout(500)
            shot = Image.open(io.BytesIO(page.locator("#graph-canvas").screenshot()))
            shot = shot.convert("RGB").resize((WIDTH, round(shot.height * WIDTH / shot.width)), Image.LANCZOS)
            shot.save(WORKFLOWS / f"{f.stem}.jpg", quality=85)
        browser.close()
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
