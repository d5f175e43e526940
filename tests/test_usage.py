"""The demo app (usage.py) driven like a browser would: filters -> merged DataFrame -> graph, table, panel."""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dash_client import DashClient  # noqa: E402
FILTERS = {"region": ["North", "East"], "category": ["Tools", "Electrical"], "quantity": [5, 30]}


@pytest.fixture(scope="module")
def usage():
    spec = importlib.util.spec_from_file_location("usage", ROOT / "usage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["usage"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("usage", None)


@pytest.fixture
def client(usage):
    client = DashClient(usage.app)
    client.layout()  # opens the session that owns this client's references
    return client


def save_filters(client, region, category, quantity) -> str:
    out = client.call(outputs=[("filters-store", "data")],
                      inputs=[("region", "value", region), ("category", "value", category),
                              ("quantity", "value", quantity)])
    return out["filters-store"]["data"]


def merge(client, filters_ref) -> str:
    out = client.call(outputs=[("merged-store", "data")], inputs=[("filters-store", "data", filters_ref)])
    return out["merged-store"]["data"]


def show(client, merged_ref) -> dict:
    return client.call(outputs=[("revenue-graph", "figure"), ("table", "data"), ("table", "columns"),
                                ("row-count", "children")],
                       inputs=[("merged-store", "data", merged_ref)])


def panel(client, filters_ref, merged_ref) -> dict:
    now = int(time.time() * 1000)
    out = client.call(outputs=[("state-panel", "children")],
                      inputs=[("filters-store", "modified_timestamp", now), ("merged-store", "modified_timestamp", now)],
                      state=[("filters-store", "data", filters_ref), ("merged-store", "data", merged_ref)])
    return out["state-panel"]["children"]


def expected_merge(usage, region, category, quantity) -> pd.DataFrame:
    """The same result computed independently with pandas."""
    sales = usage.SALES
    sales = sales[sales["region"].isin(region) & (sales["quantity"] >= quantity[0]) & (sales["quantity"] <= quantity[1])]
    products = usage.PRODUCTS[usage.PRODUCTS["category"].isin(category)]
    merged = sales.merge(products, on="product")
    return merged.assign(revenue=merged["quantity"] * merged["price"])


def panel_rows(children) -> dict:
    """{store id: {"backend": ..., "server": bytes, "browser": bytes}} from the panel's table."""
    def walk(node):
        if isinstance(node, dict):
            props = node.get("props", {})
            if node.get("type") == "Tr" and str(props.get("id", "")).startswith("panel-"):
                yield props["id"][len("panel-"):], [td["props"] for td in props["children"]]
            yield from walk(props.get("children"))
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    def exact(td):  # the cell's tooltip holds the exact count: "12,345 bytes"
        return int(td["title"].split()[0].replace(",", ""))

    return {sid: {"backend": tds[1]["children"], "server": exact(tds[2]), "browser": exact(tds[3]),
                  "shown": (tds[2]["children"], tds[3]["children"])}
            for sid, tds in walk(children)}


def test_dataset_is_big_enough(usage):
    assert len(usage.SALES) >= 100_000
    assert set(usage.SALES["product"].unique()) <= set(usage.PRODUCTS["product"])


def test_merge_sends_a_short_reference_instead_of_the_data(client):
    filters_ref = save_filters(client, **FILTERS)
    assert isinstance(filters_ref, str) and filters_ref.startswith("dsr2.")

    merged_ref = merge(client, filters_ref)
    assert isinstance(merged_ref, str) and merged_ref.startswith("dsr2.local.")
    assert len(merged_ref.encode()) < 256
    assert client.last_response_bytes < 1024  # the whole HTTP response, not just the value


def test_graph_and_table_are_built_from_the_real_merged_data(usage, client):
    merged_ref = merge(client, save_filters(client, **FILTERS))
    out = show(client, merged_ref)
    expected = expected_merge(usage, **FILTERS)
    assert 10_000 < len(expected) < len(usage.SALES)  # the filters really filter

    assert out["row-count"]["children"].startswith(f"{len(expected):,} rows")
    rows = out["table"]["data"]
    assert len(rows) == 20
    assert {r["region"] for r in rows} <= set(FILTERS["region"])
    assert {r["category"] for r in rows} <= set(FILTERS["category"])
    assert all(5 <= r["quantity"] <= 30 for r in rows)
    assert {c["id"] for c in out["table"]["columns"]} >= {"date", "region", "product", "category", "revenue"}

    traces = out["revenue-graph"]["figure"]["data"]
    assert sorted(t["name"] for t in traces) == sorted(FILTERS["region"])
    plotted = sum(sum(t["y"]) if isinstance(t["y"], list) else 0 for t in traces)
    if not plotted:  # plotly may encode numeric arrays as typed arrays {"dtype", "bdata"}
        import base64

        import numpy as np
        plotted = sum(np.frombuffer(base64.b64decode(t["y"]["bdata"]), dtype=t["y"]["dtype"]).sum() for t in traces)
    assert plotted == pytest.approx(expected["revenue"].sum(), rel=1e-9)


def test_panel_shows_where_the_data_lives(client):
    filters_ref = save_filters(client, region=["North", "South", "East", "West", "Central"],
                               category=["Electrical", "Hardware", "Supplies", "Tools"], quantity=[1, 50])
    merged_ref = merge(client, filters_ref)
    rows = panel_rows(panel(client, filters_ref, merged_ref))

    merged = rows["merged-store"]
    assert merged["backend"] == "local"
    assert merged["server"] > 1_000_000
    assert merged["browser"] == len(merged_ref) < 256
    assert merged["shown"][0].endswith("MB") and merged["shown"][1].endswith(" B")

    filters = rows["filters-store"]
    assert filters["backend"] == "local"
    assert 0 < filters["server"] < 1_000 and filters["browser"] == len(filters_ref)


def test_references_of_another_session_are_refused(usage, client):
    merged_ref = merge(client, save_filters(client, **FILTERS))
    stranger = DashClient(usage.app)
    stranger.layout()
    out = show(stranger, merged_ref)  # the callback gets None: no data leaks to another session
    assert out["row-count"]["children"] == "0 rows"
    assert out["table"]["data"] == []
