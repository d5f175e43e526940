"""Drive a Dash app's callbacks through Flask's test client, the way the renderer does."""
from __future__ import annotations

import json
from typing import Any

import dash


class DashClient:
    def __init__(self, app: dash.Dash):
        self.app = app
        self.http = app.server.test_client()
        self.last_response_bytes = 0

    def namespace(self) -> str:
        """The storage namespace of this client's anonymous identity (from dash-state's cookie)."""
        from dash_state import get_state_manager, identity
        from dash_state.identity import cookie

        manager = get_state_manager(self.app)
        found = self.http.get_cookie(manager.identity_settings.cookie_name)
        assert found is not None, "no identity cookie yet: call layout() or a callback first"
        state = cookie.decode(found.value, manager.keys.all("identity cookie"), 10 ** 9)
        assert state is not None, "the identity cookie does not verify"
        return identity.anonymous_namespace(state.anon)

    def layout(self) -> dict:
        response = self.http.get("/_dash-layout")
        assert response.status_code == 200, response.data[:500]
        return response.get_json()

    def index(self) -> str:
        response = self.http.get("/")
        assert response.status_code == 200
        return response.get_data(as_text=True)

    def raw_call(self, outputs: list[tuple[Any, str]], inputs: list[tuple[Any, str, Any]],
                 state: list[tuple[Any, str, Any]] = (), changed: list[str] | None = None,
                 callback_id: str | None = None):
        """POST one callback request; ``outputs`` are (id, prop), inputs/state are (id, prop, value)."""
        def item(id_, prop, *value):
            out = {"id": id_, "property": prop}
            if value:
                out["value"] = value[0]
            return out

        def key(id_):
            return json.dumps(id_, sort_keys=True, separators=(",", ":")) if isinstance(id_, dict) else id_

        output_items = [item(i, p) for i, p in outputs]
        output_str = f"{key(outputs[0][0])}.{outputs[0][1]}" if len(outputs) == 1 \
            else ".." + "...".join(f"{key(i)}.{p}" for i, p in outputs) + ".."
        body = {
            "output": callback_id or output_str,
            "outputs": output_items if len(outputs) != 1 else output_items[0],
            "inputs": [item(i, p, v) for i, p, v in inputs],
            "state": [item(i, p, v) for i, p, v in state],
            "changedPropIds": changed if changed is not None else [f"{key(i)}.{p}" for i, p, _ in inputs[:1]],
        }
        response = self.http.post("/_dash-update-component", data=json.dumps(body),
                                   content_type="application/json")
        self.last_response_bytes = len(response.data)
        return response

    def call(self, outputs, inputs, state=(), callback_id=None) -> dict:
        """Like raw_call, but asserts success and returns ``{id: {prop: value}}``."""
        response = self.raw_call(outputs, inputs, state, callback_id=callback_id)
        assert response.status_code == 200, response.get_data(as_text=True)[:2000]
        return response.get_json()["response"]
