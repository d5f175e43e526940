"""Peak RSS of the worst body each dash-state route can be sent, at the default limits.

    python benchmarks/attack_rss.py            # this checkout
    PYTHONPATH=/tmp/before python benchmarks/attack_rss.py   # another one (e.g. a git worktree)

For each attack a fresh server process (memory backend, default settings, 127.0.0.1, a free port)
loads the page, writes one small value through a callback, then gets the hostile body once. The table
is the server's VmHWM (peak RSS) before and after that request, from /proc/<pid>/status, and the answer.
Each request has a timeout; the server is killed afterwards. Linux only.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time

LIMIT = 64 << 20  # STATE_MAX_VALUE_BYTES' default
SERVER = r'''
import sys
from dash import Dash, Input, Output, html
from dash_state import ServerStore
app = Dash(__name__)
app.server.config["SECRET_KEY"] = "bench"
app.layout = html.Div([html.Button(id="btn"), ServerStore(id="s"), html.Div(id="out")])
@app.callback(Output("s", "data"), Input("btn", "n_clicks"), prevent_initial_call=True)
def write(n):
    return {"text": "abcdefghij" * 20, "rows": [0, 1], "n": n}
from werkzeug.serving import run_simple
run_simple("127.0.0.1", int(sys.argv[1]), app.server, threaded=False)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10
    return 0


class Server:
    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=os.environ)
        self.cookie = ""
        for _ in range(300):
            try:
                self.request("GET", "/_dash-layout")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 120):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Cookie": self.cookie, **(headers or {})}
        if isinstance(body, (list, tuple)):  # chunks: Transfer-Encoding: chunked
            connection.putrequest(method, path)
            for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                connection.putheader(name, value)
            connection.endheaders()
            try:
                for chunk in body:
                    connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                connection.send(b"0\r\n\r\n")
            except OSError:  # the server answered (413) and closed before the rest
                pass
        else:
            connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        connection.close()
        return response.status, data

    def token(self) -> str:
        body = {"output": "s.data", "outputs": {"id": "s", "property": "data"},
                "inputs": [{"id": "btn", "property": "n_clicks", "value": 1}], "state": [],
                "changedPropIds": ["btn.n_clicks"]}
        status, data = self.request("POST", "/_dash-update-component", json.dumps(body),
                                    {"Content-Type": "application/json"})
        return json.loads(data)["response"]["s"]["data"]

    def close(self):
        self.process.kill()
        self.process.wait()


def op(name, location, **params):
    return {"operation": name, "location": location, "params": params}


def attacks(token: str) -> dict:
    """route label -> (route, body, content type); each the worst this author could find at the defaults."""
    def patch(*ops):
        return json.dumps({"id": "s", "base": token, "patched": {"x": 1}, "operations": list(ops)}).encode()

    dicts = b'{"id":"s","data":[' + b"{}," * ((LIMIT - 40) // 3) + b"{}]}"
    chunk = b"[" * (1 << 20)
    return {
        "patch Mul string x 300000 (197 B)": ("patch", patch(op("Mul", ["text"], value=300_000)), None),
        "patch Mul string x 10**6": ("patch", patch(op("Mul", ["text"], value=10 ** 6)), None),
        "patch Assign index 10**8": ("patch", patch(op("Assign", ["rows", 10 ** 8], value=1)), None),
        "put 64 MiB of {} (parse)": ("put", dicts, None),
        "put 400 MiB chunked": ("put", [chunk] * 400, None),
        "touch 400 MiB chunked": ("touch", [chunk] * 400, None),
        "get 400 MiB chunked": ("get", [chunk] * 400, None),
        "delete 400 MiB chunked": ("delete", [chunk] * 400, None),
        "release 400 MiB chunked": ("release", [chunk] * 400, None),
    }


def run(label: str) -> tuple[str, int, int, str]:
    server = Server()
    try:
        token = server.token()
        route, body, _ = attacks(token)[label]
        before = hwm(server.process.pid)
        try:
            status, data = server.request("POST", f"/_dash-state/v1/{route}", body,
                                          {"Content-Type": "application/json"})
            answer = f"{status} {data[:60].decode(errors='replace')}"
        except (OSError, http.client.HTTPException) as exc:
            answer = f"no answer ({type(exc).__name__})"
        time.sleep(0.2)
        return label, before, hwm(server.process.pid), answer
    finally:
        server.close()


def main() -> None:
    import dash_state

    print(f"dash_state from {os.path.dirname(dash_state.__file__)}")
    print(f"{'attack':36} {'RSS before':>11} {'peak RSS':>11} {'growth':>10}  answer")
    for label in attacks("dsr2.x"):
        name, before, peak, answer = run(label)
        print(f"{name:36} {before >> 20:>8} MB {peak >> 20:>8} MB {(peak - before) >> 20:>7} MB  {answer}")


if __name__ == "__main__":
    main()
