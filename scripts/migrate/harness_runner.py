"""The server of one copy of the app, run as a script in its own process (``serve.AppServer`` copies this
file into the work folder first, so the app's imports never see this package). It imports the app
unchanged and wraps its WSGI app: requests to ``/_dash-layout`` and ``/_dash-update-component`` are
counted and their bodies kept, for ``/__harness/stats``; ``/__harness/pages`` lists the registered pages.

    python harness_runner.py APP_DIR ENTRY PORT APP_ATTR
"""
import importlib
import json
import os
import random
import sys
import threading

app_dir, entry, port, app_attr = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.chdir(app_dir)
sys.path.insert(0, app_dir)
random.seed(0)  # every run of either copy draws the same "random" data
try:
    import numpy
    numpy.random.seed(0)
except ImportError:
    pass
import dash
module_name = entry[:-3].replace("/", ".") if entry.endswith(".py") else entry
module = importlib.import_module(module_name)
app = getattr(module, app_attr, None)
if not isinstance(app, dash.Dash):
    app = next(v for v in vars(module).values() if isinstance(v, dash.Dash))

ENDPOINTS = ("/_dash-update-component", "/_dash-layout")
lock = threading.Lock()
stats = {}


def reset():
    stats.clear()
    stats.update({"requests": {e: 0 for e in ENDPOINTS}, "request_bytes": {e: 0 for e in ENDPOINTS},
                  "response_bytes": {e: 0 for e in ENDPOINTS}, "cookie_bytes": 0, "set_cookie_bytes": 0,
                  "errors": [], "bodies": []})


reset()


class Count:
    def __init__(self, wsgi):
        self.wsgi = wsgi

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/__harness/stats":
            with lock:
                body = json.dumps(stats).encode()
                if "reset" in environ.get("QUERY_STRING", ""):
                    reset()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/__harness/pages":
            pages = [p["relative_path"] for p in dash.page_registry.values() if not p.get("path_template")]
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(pages).encode()]
        endpoint = next((e for e in ENDPOINTS if path.endswith(e)), None)
        if endpoint is None:
            return self.wsgi(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        cookie = len(environ.get("HTTP_COOKIE", ""))
        seen = {}

        def start(status, headers, exc_info=None):
            seen["status"] = status
            seen["set_cookie"] = sum(len(v) for k, v in headers if k.lower() == "set-cookie")
            return start_response(status, headers, exc_info)

        chunks = list(self.wsgi(environ, start))
        body = b"".join(chunks)
        with lock:
            stats["requests"][endpoint] += 1
            stats["request_bytes"][endpoint] += length
            stats["response_bytes"][endpoint] += len(body)
            stats["cookie_bytes"] += cookie
            stats["set_cookie_bytes"] += seen.get("set_cookie", 0)
            if not seen.get("status", "200").startswith(("200", "204")):
                stats["errors"].append([endpoint, seen.get("status"), body[:500].decode("utf-8", "replace")])
            stats["bodies"].append([endpoint, body.decode("utf-8", "replace")])
        return [body]


app.server.wsgi_app = Count(app.server.wsgi_app)
print("HARNESS-READY", flush=True)
app.run(host="127.0.0.1", port=port, debug=False)
