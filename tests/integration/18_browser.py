"""18 browser: a real browser against a broker group (issue 18). Debian's chromium, headless,
driven by tests/browser/drive.mjs (puppeteer-core from npm, pinned in
tests/browser/package-lock.json and installed by `./tandem.sh setup`), loads a page that uses
@stomp/stompjs over ws:// with a list of two brokers; it subscribes, sends receipted
persistent messages, the master is killed in the middle of a batch, the page reconnects to the
new master, sends more, and every receipted message must arrive. The page and stompjs are
served from loopback (no CDN). A second case drives the console's own panels
(tests/browser/console.mjs): a message sent with the send panel (stompjs embedded in tandemd)
shows up in the browse panel. Screenshots go to $TANDEM_ARTIFACT_DIR/browser (CTest sets it
to build/test-artifacts)."""
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading

from tandem_test import Broker, SharedBroker, client, free_port, run, skip

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "..", "browser")
STOMPJS = os.path.join(BROWSER_DIR, "node_modules", "@stomp", "stompjs", "bundles", "stomp.umd.min.js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def artifact_dir():
    d = os.environ.get("TANDEM_ARTIFACT_DIR") or os.path.join(tempfile.gettempdir(), "tandem-artifacts")
    d = os.path.join(d, "browser")
    os.makedirs(d, exist_ok=True)
    return d


class PageServer:
    """Serves page.html, page.js and the stompjs bundle on loopback, from a thread."""

    FILES = {"/": ("page.html", "text/html"), "/page.html": ("page.html", "text/html"),
             "/page.js": ("page.js", "text/javascript"), "/stomp.umd.min.js": (STOMPJS, "text/javascript")}

    def __init__(self):
        files = self.FILES

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                entry = files.get(self.path.split("?")[0])
                if entry is None:
                    self.send_error(404)
                    return
                with open(os.path.join(BROWSER_DIR, entry[0]), "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Type", entry[1])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def require_browser():
    if not os.path.exists(CHROMIUM):
        skip(f"{CHROMIUM} not installed (Debian package chromium; ./tandem.sh setup installs it)")
    if not shutil.which("node"):
        skip("node not installed (Debian package nodejs)")
    if not os.path.exists(os.path.join(BROWSER_DIR, "node_modules", "puppeteer-core")) or not os.path.exists(STOMPJS):
        skip("tests/browser/node_modules missing: run ./tandem.sh setup (npm ci in tests/browser)")


def browser_group(brokers, origin, extra=None):
    store = os.path.join(tempfile.mkdtemp(prefix="tandem-itest-store-"), "store")
    group = []
    for i in range(2):
        ws_port = free_port()
        config = {"ws_listen": f"127.0.0.1:{ws_port}", "ws_allowed_origins": [origin], "admin_open_reads": True}
        config.update(extra or {})
        b = SharedBroker(store, f"b{i}", create=(i == 0), config=config)
        b.ws_port = ws_port
        brokers.append(b)
        group.append(b)
    # Each console lists the other broker (group_admin_urls).
    for b, other in ((group[0], group[1]), (group[1], group[0])):
        b.config = dict(b.config, group_admin_urls=[f"http://127.0.0.1:{other.admin_port}"])
    group[0].start()
    group[1].start(wait=False)
    group[1].wait_log(r"slave: waiting for lock")
    return group


def drive(spec, timeout=120, script="drive.mjs"):
    p = subprocess.run(["node", os.path.join(BROWSER_DIR, script), json.dumps(spec)], capture_output=True,
                       text=True, timeout=timeout, cwd=BROWSER_DIR)
    if p.returncode != 0:
        raise AssertionError(f"{script} exited {p.returncode}\nstdout: {p.stdout[-4000:]}\nstderr: {p.stderr[-8000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_stompjs_in_chromium_survives_a_failover_without_losing_a_receipted_message(brokers):
    require_browser()
    server = PageServer()
    try:
        master, slave = browser_group(brokers, server.origin)
        spec = {"page": f"{server.origin}/page.html",
                "urls": [f"ws://127.0.0.1:{b.ws_port}/" for b in (master, slave)],
                "victimPid": master.proc.pid, "artifacts": artifact_dir(),
                "consoles": {
                    "before": [{"name": "b1", "url": f"http://127.0.0.1:{slave.admin_port}/console", "wait_role": "slave",
                                "wait_group": "b0:master"},
                               {"name": "b0", "url": f"http://127.0.0.1:{master.admin_port}/console",
                                "wait_role": "master", "wait_group": "b1:slave"}],
                    "after": [{"name": "b1", "url": f"http://127.0.0.1:{slave.admin_port}/console", "wait_role": "master",
                               "wait_group": "unreachable", "wait_timeline": "2:b1"}]}}
        out = drive(spec)
    finally:
        server.close()
    receipted = out["batch_a"] + out["batch_c"] + out["batch_b"]
    received = set(out["received"])
    missing = [b for b in receipted if b not in received]
    print(f"  receipted {len(receipted)} (of the 1000 in flight at the kill: {len(out['batch_c'])}), received "
          f"{len(received)}, reconnect {out['reconnect_ms']} ms, connects {out['connects']}")
    assert len(out["batch_a"]) == 50 and len(out["batch_b"]) == 50, out
    assert not missing, f"receipted but never delivered: {missing[:20]} ({len(missing)})"
    assert out["connects"] >= 2 and out["brokers"][-1]["url"].endswith(f":{slave.ws_port}/"), out["brokers"]
    assert not out["errors"], out["errors"]
    # The console renders the group with the right roles, from either broker, before and after.
    assert out["console_b1_before"]["group"] == "b0:master,b1:slave", out["console_b1_before"]
    assert out["console_b0_before"]["group"] == "b0:master,b1:slave", out["console_b0_before"]
    after = out["console_b1_after"]["group"]
    assert "b1:master" in after and "b0:master" not in after and "unreachable" in after, after
    # The timeline (from the store's history file) and its Chart.js charts: both masters,
    # and one failover (epoch 2 after the kill).
    assert out["console_b1_after"]["timeline"] == "1:b0,2:b1", out["console_b1_after"]
    assert out["console_b1_after"]["charts"] == "2 stints, 1 failovers", out["console_b1_after"]
    for name in ("page-before-failover.png", "page-after-failover.png", "console-b1-before.png",
                 "console-b0-before.png", "console-b1-after.png"):
        assert os.path.getsize(os.path.join(spec["artifacts"], name)) > 1000


def test_the_console_sends_through_its_stompjs_panel_and_browses_what_it_sent(brokers):
    require_browser()
    users = [{"login": "ops", "password": "ops-secret", "groups": ["admin"]},
             {"login": "app", "password": "app-secret", "groups": ["apps"]}]
    # No ws_allowed_origins: the console's own origin (the admin port) is what lets it in.
    b = Broker(config={"users": users, "ws_listen": "127.0.0.1:0"}, name="console")
    brokers.append(b)
    b.start()
    b.wait_log(r"stomp ws listening")
    body = "hello from the send panel"
    out = drive({"console": f"http://127.0.0.1:{b.admin_port}/console", "user": "ops", "password": "ops-secret",
                 "login": "app", "passcode": "app-secret", "destination": "/queue/console-test", "body": body,
                 "artifacts": artifact_dir()}, timeout=90, script="console.mjs")
    print(f"  send panel: {out['send_result']!r}; browse rows: {len(out['browse_rows'])}")
    assert out["stompjs_loaded"], "the console was built without @stomp/stompjs (./tandem.sh setup)"
    assert not out["errors"], out
    assert out["send_result"].startswith("sent to /queue/console-test"), out["send_result"]
    [row] = out["browse_rows"]
    assert row[6] == body and row[2] == "yes", row
    # The message was browsed, not consumed: a STOMP consumer still gets it.
    c = client(b, login="app", passcode="app-secret")
    c.subscribe("/queue/console-test", id="s", ack="auto")
    assert [m.body for m in c.collector.wait_messages(1)] == [body]
    c.disconnect()
    for name in ("console-send.png", "console-browse.png"):
        assert os.path.getsize(os.path.join(artifact_dir(), name)) > 1000


if __name__ == "__main__":
    run([v for k, v in list(globals().items()) if k.startswith("test_")])
