"""segue.js on a page of another origin, as docs/web-client.md allows: the game's page loads
the script from the segue server and passes ``url``. In Chromium, a page served on another
port (another origin) reaches the segue server:
the cue over WebSocket, the audio through ``fetchTrack`` and a ranged ``fetch``, and the
HTTP API (a JSON POST, which a browser preflights) must all pass the browser's CORS checks.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from web_support import browser, server  # noqa: F401 - fixtures


class GamePage(BaseHTTPRequestHandler):
    """The game's own web server: one blank page."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>game</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


SCRIPT = """
async (base) => {
  const client = new Segue.Client({
    url: base.replace("http:", "ws:") + "/ws", session: "cross-origin", audio: false,
    prefetch: false,
  });
  const cue = client.next("cue", null, 20000);
  client.connect();
  const track = (await cue).track;
  const out = {origin: location.origin, size: track.bytes};
  try {
    out.fetched = (await client.fetchTrack(track)).byteLength;
    const part = await fetch(new URL(track.url, base), {headers: {Range: "bytes=0-99"}});
    const got = (await part.arrayBuffer()).byteLength;
    out.range = [part.status, part.headers.get("Content-Range"), got];
    const api = await fetch(base + "/api/sessions/cross-origin/state", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({set: {in_combat: true}}),
    });
    out.api = [api.status, (await api.json()).desired];
    const bad = await fetch(base + "/api/sessions/cross-origin/events", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({name: "no_such_event"}),
    });
    out.error = [bad.status, (await bad.json()).code];
  } catch (e) {
    out.failed = String(e);
  }
  client.close();
  return out;
}
"""


def test_segue_js_from_another_origin_gets_its_audio_and_the_api(browser, server) -> None:  # noqa: F811
    game = ThreadingHTTPServer(("127.0.0.1", 0), GamePage)
    threading.Thread(target=game.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        origin = f"http://127.0.0.1:{game.server_address[1]}"
        page.goto(f"{origin}/game.html")
        page.add_script_tag(url=f"{server.http}/static/segue.js")
        out = page.evaluate(SCRIPT, server.http)
    finally:
        page.close()
        game.shutdown()
        game.server_close()
    assert out["origin"] == origin and "failed" not in out, out
    assert out["fetched"] == out["size"]
    assert out["range"] == [206, f"bytes 0-99/{out['size']}", 100]
    assert out["api"] == [200, "combat"]
    assert out["error"] == [404, "unknown_event"]  # errors are readable too
