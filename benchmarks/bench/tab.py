"""A simulated browser tab: Dash's renderer requests through Flask's test client, only the POSTs timed."""
from __future__ import annotations

from typing import Any

import orjson


class CallbackFailed(RuntimeError):
    """A request answered other than 200; ``status`` tells a refusal (413: too big) from an error."""

    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text[:300]}")
        self.status = status


class Tab:
    """One browser tab on one app: Flask's test client (it keeps cookies), callback requests shaped as
    Dash's renderer sends them, and dash-state's release call. Only the POSTs of callbacks are timed
    (``roundtrip.TimedHttp``); building the request body and parsing the response are the simulated
    browser's work and stay outside the timed region."""

    def __init__(self, app):
        from dash_client import DashClient
        from roundtrip import TimedHttp

        self.app = app
        self.client = DashClient(app)
        self.http = self.client.http = TimedHttp(self.client.http)
        self.released = 0

    def open(self) -> None:
        """What a page load does: GET / then the layout and the dependencies."""
        for path in ("/", "/_dash-layout", "/_dash-dependencies"):
            response = self.http.get(path)
            if response.status_code != 200:
                raise CallbackFailed(response.status_code, f"GET {path}: {response.get_data(as_text=True)}")

    def callback(self, output: tuple[str, str], inputs: list[tuple[str, str, Any]], extra: dict | None = None,
                 state: list[tuple[str, str, Any]] = ()) -> tuple[Any, float, int, int]:
        """POST one callback; returns (the output's value, seconds, request bytes, response bytes)."""
        body = {
            "output": f"{output[0]}.{output[1]}",
            "outputs": {"id": output[0], "property": output[1]},
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
            "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
            "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
        }
        if extra:
            body.update(extra)
        data = orjson.dumps(body)
        response = self.http.post("/_dash-update-component", data=data, content_type="application/json")
        seconds = self.http.last_seconds
        if response.status_code != 200:
            raise CallbackFailed(response.status_code, response.get_data(as_text=True))
        raw = response.get_data()
        return orjson.loads(raw)["response"][output[0]][output[1]], seconds, len(data), len(raw)

    def release(self, store_id: str, reference: str) -> int:
        """What the component does after a write: let go of the reference it replaced."""
        response = self.http.post("/_dash-state/v1/release", content_type="application/json",
                                  data=orjson.dumps({"stores": [{"id": store_id, "reference": reference}]}))
        if response.status_code != 200:
            raise CallbackFailed(response.status_code, "release: " + response.get_data(as_text=True))
        released = int(orjson.loads(response.get_data()).get("released", 0))
        self.released += released
        return released

    def cookie(self) -> str | None:
        found = self.http.get_cookie("dash_state_id")
        return None if found is None else found.value

    def adopt_cookie(self, other: Tab) -> None:
        """Be the same browser as ``other`` (a request of that browser reaching another worker)."""
        value = other.cookie()
        if value is not None:
            self.http.set_cookie("dash_state_id", value)

    def namespace(self) -> str:
        return self.client.namespace()


def is_reference(value: Any) -> bool:
    """What a ServerStore holds in the browser: a reference string, not the value."""
    return isinstance(value, str) and value.startswith("dsr")

