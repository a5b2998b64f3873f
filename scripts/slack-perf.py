#!/usr/bin/env python3
"""Measures Slack approvals end to end on this machine (standard library only).

Starts a minimal stand-in for the Slack Web API and `warden serve` on a copy of
examples/support-refunds (SQLite in a temporary directory), then for N refund
requests by billing-bot ($500, one finance approval):

  post     proposal answered -> chat.postMessage received by the stand-in
  ack      Dave's signed Approve press sent -> Warden's 200 (Slack allows 3 s)
  update   press sent -> chat.update showing "Approved" received

Usage: scripts/slack-perf.py [N] [--binary target/release/warden]
Prints p50 / p99 / max in milliseconds for each.
"""

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "perf-signing-secret"
TOKEN = "xoxb-perf"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

posted = {}   # approval id -> time the post arrived
updated = {}  # approval id -> time an "Approved" update arrived
ts_of = {}    # approval id -> message ts
lock = threading.Lock()


class Slack(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        now = time.monotonic()
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        method = self.path.rsplit("/", 1)[-1]
        answer = {"ok": True}
        if self.headers.get("content-type", "").startswith("application/json"):
            msg = json.loads(body)
            if method == "chat.postMessage":
                apr = msg["metadata"]["event_payload"]["approval_id"]
                with lock:
                    ts = "%d.%06d" % (time.time(), len(ts_of) + 1)
                    ts_of[apr] = ts
                    posted.setdefault(apr, now)
                answer = {"ok": True, "ts": ts, "channel": msg["channel"]}
            elif method == "chat.update" and "*Approved*" in json.dumps(msg["blocks"]):
                with lock:
                    apr = next((a for a, t in ts_of.items() if t == msg["ts"]), None)
                    if apr:
                        updated.setdefault(apr, now)
        else:
            answer = {"ok": True, "messages": []}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def stats(name, values):
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
    print("%-7s n=%-4d p50 %8.2f ms   p99 %8.2f ms   max %8.2f ms" % (
        name, len(v), pick(0.5) * 1000, pick(0.99) * 1000, v[-1] * 1000))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200
    binary = os.path.join(ROOT, "target/release/warden")
    if "--binary" in sys.argv:
        binary = sys.argv[sys.argv.index("--binary") + 1]
    slack = ThreadingHTTPServer(("127.0.0.1", 0), Slack)
    threading.Thread(target=slack.serve_forever, daemon=True).start()
    api = "http://127.0.0.1:%d/api" % slack.server_address[1]

    tmp = tempfile.mkdtemp()
    pack = os.path.join(tmp, "pack")
    shutil.copytree(os.path.join(ROOT, "examples/support-refunds"), pack)
    manifest = os.path.join(pack, "warden.toml")
    text = open(manifest).read().replace("[slack]\n", '[slack]\napi_url = "%s"\n' % api, 1)
    open(manifest, "w").write(text)
    env = dict(os.environ, WARDEN_SLACK_BOT_TOKEN=TOKEN, WARDEN_SLACK_SIGNING_SECRET=SECRET)
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--pack", pack, "--data", os.path.join(tmp, "data")],
        stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "w"), env=env, text=True)
    base = next(w for w in server.stdout.readline().split() if w.startswith("http://"))
    try:
        run(base, n)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def call(url, data, headers):
    req = urllib.request.Request(url, data=data.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req) as r:
        return r.status, r.read()


def run(base, n):
    proposed = {}
    for i in range(n):
        body = json.dumps({"tool": "stripe.refund", "mode": "enforce", "arguments": {
            "order_id": "ord_%d" % i, "customer_id": "cus_perf", "amount_cents": 50000, "reason": "damaged"}})
        _, out = call(base + "/v1/actions", body, {
            "authorization": "Bearer demo-billing-bot", "content-type": "application/json"})
        apr = json.loads(out)["approval_id"]
        proposed[apr] = time.monotonic()
    deadline = time.monotonic() + 60
    while len(posted) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    acks, pressed = [], {}
    for apr in proposed:
        payload = json.dumps({
            "type": "block_actions", "user": {"id": "U05DAVELIND"}, "team": {"id": "T05PERF"},
            "channel": {"id": "C05FINAPPROVALS"}, "trigger_id": "1.2.%s" % apr,
            "container": {"type": "message", "message_ts": ts_of.get(apr, ""), "channel_id": "C05FINAPPROVALS"},
            "actions": [{"action_id": "warden_approve", "value": apr, "type": "button",
                         "action_ts": "%.6f" % time.time()}]})
        body = urllib.parse.urlencode({"payload": payload})
        ts = str(int(time.time()))
        sig = "v0=" + hmac.new(SECRET.encode(), ("v0:%s:%s" % (ts, body)).encode(), hashlib.sha256).hexdigest()
        started = time.monotonic()
        status, _ = call(base + "/v1/integrations/slack/interactions", body, {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": ts, "x-slack-signature": sig})
        acks.append(time.monotonic() - started)
        pressed[apr] = started
        assert status == 200, status
    deadline = time.monotonic() + 60
    while len(updated) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    print("%d requests, %d posted, %d shown approved" % (n, len(posted), len(updated)))
    stats("post", [posted[a] - proposed[a] for a in proposed if a in posted])
    stats("ack", acks)
    stats("update", [updated[a] - pressed[a] for a in pressed if a in updated])


if __name__ == "__main__":
    main()
