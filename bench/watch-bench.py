#!/usr/bin/env python3
"""Watch delivery: WATCHERS streams on one prefix, one writer putting keys for
DURATION_S seconds (one write in flight, so the rate is the write rate times
the watchers); each value is the writer's clock when it sent the put, each
watcher notes when it saw the event. Prints one TSV row like run_wrk's:
system, op, watchers, rep, events delivered/s, p50 ms, p99 ms, errors, cpu (nan).

  watch-bench.py raftkv|etcd URL WATCHERS DURATION_S REP
"""
import base64, http.client, json, sys, threading, time, urllib.parse

system, url, watchers, duration_s, rep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
parts = urllib.parse.urlsplit(url)
host, port = parts.hostname, parts.port
PREFIX = "bench/w/"
latencies, lock, errors, ready = [], threading.Lock(), [0], threading.Barrier(watchers + 1)
stop = threading.Event()

def b64(text):
    return base64.b64encode(text.encode()).decode()

def watch():
    try:
        conn = http.client.HTTPConnection(host, port, timeout=duration_s + 10)
        if system == "raftkv":
            conn.request("GET", "/watch?prefix=" + urllib.parse.quote(PREFIX) + "&progressMs=1000")
        else:
            body = {"create_request": {"key": b64(PREFIX), "range_end": b64(PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1))}}
            conn.request("POST", "/v3/watch", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
    except OSError:
        errors[0] += 1
        ready.wait()
        return
    ready.wait()
    while not stop.is_set():
        line = response.readline()
        if not line:
            break
        now = time.monotonic_ns()
        try:
            message = json.loads(line)
        except ValueError:
            continue
        events = message.get("events") or message.get("result", {}).get("events") or []
        for event in events:
            value = event["kv"].get("value", "")
            sent = int(value if system == "raftkv" else base64.b64decode(value).decode())
            with lock:
                latencies.append((now - sent) / 1e6)

threads = [threading.Thread(target=watch, daemon=True) for _ in range(watchers)]
for thread in threads:
    thread.start()
ready.wait()
time.sleep(0.5)
writer = http.client.HTTPConnection(host, port, timeout=10)
started, writes = time.monotonic(), 0
while time.monotonic() - started < duration_s:
    value = str(time.monotonic_ns())
    key = f"{PREFIX}{writes % 100:02d}"
    try:
        if system == "raftkv":
            writer.request("PUT", "/set", json.dumps({"key": key, "value": value}), {"Content-Type": "application/json"})
        else:
            writer.request("POST", "/v3/kv/put", json.dumps({"key": b64(key), "value": b64(value)}),
                           {"Content-Type": "application/json"})
        response = writer.getresponse()
        response.read()
        if response.status != 200:
            errors[0] += 1
        writes += 1
    except OSError:
        errors[0] += 1
        writer = http.client.HTTPConnection(host, port, timeout=10)
elapsed = time.monotonic() - started
time.sleep(1.0)
stop.set()
time.sleep(0.2)
with lock:
    seen = sorted(latencies)
missing = writes * watchers - len(seen)
def pct(q):
    return seen[min(len(seen) - 1, int(q * len(seen)))] if seen else float("nan")
print("\t".join([system, "watch", str(watchers), rep, f"{len(seen) / elapsed:.1f}", f"{pct(0.5):.3f}",
                 f"{pct(0.99):.3f}", str(errors[0] + max(missing, 0)), "nan"]))
