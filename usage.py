"""dash-state demo: a small data tool whose big intermediate result never leaves the server.

What it demonstrates:

* ``ServerStore`` used exactly like ``dcc.Store``: the callbacks below return and receive a pandas
  DataFrame and a dict, with no dash-state code in them.
* The browser only ever holds a short reference (``dsr2.memory.<key>.<sig>``) for each store, while
  the merged DataFrame (several MB) stays in the server's memory backend.
* The "Where the data lives" panel, built with ``get_state_manager(app).describe()`` and ``.stats()``,
  shows for each store how many bytes the server holds and how many the browser holds.
* ``config.toml`` next to this file sets a per-store TTL and shows the per-store rollback switch.
* Live, shared stores: ``team-notes`` is one list for everyone (``scope="app"``), ``bookmarks`` one
  list per user for all their tabs (``scope="user"``); both ``live=True``. Open the page in two
  windows: a note pinned or a view bookmarked in one appears in the other at once.

Run: ``python usage.py`` (then open http://127.0.0.1:8050), or ``gunicorn usage:server``.
"""
import os

import dash
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, Patch, State, dash_table, dcc, html

import dash_state
from dash_state import ServerStore
from dash_state.glue.devtools import browser_bytes

# -- data: one big generated sales table and a small product table to merge with -------------------
N_ROWS = 150_000
REGIONS = ["North", "South", "East", "West", "Central"]
PRODUCTS = pd.DataFrame({
    "product": ["Anvil", "Bolt", "Cable", "Drill", "Epoxy", "Fuse", "Gear", "Hinge", "Insulator", "Jack"],
    "category": ["Tools", "Hardware", "Electrical", "Tools", "Supplies",
                 "Electrical", "Hardware", "Hardware", "Electrical", "Tools"],
    "unit_cost": [42.0, 0.15, 3.2, 55.0, 6.5, 0.9, 4.75, 1.1, 2.4, 31.0],
})
CATEGORIES = sorted(PRODUCTS["category"].unique())

_rng = np.random.default_rng(seed=42)
_product = _rng.integers(0, len(PRODUCTS), N_ROWS)
SALES = pd.DataFrame({
    "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(_rng.integers(0, 730, N_ROWS), unit="D"),
    "region": np.array(REGIONS)[_rng.integers(0, len(REGIONS), N_ROWS)],
    "product": PRODUCTS["product"].to_numpy()[_product],
    "quantity": _rng.integers(1, 51, N_ROWS),
    # list price: unit cost plus a random 10-60 % markup
    "price": np.round(PRODUCTS["unit_cost"].to_numpy()[_product] * _rng.uniform(1.1, 1.6, N_ROWS), 2),
})


def merge_sales(filters: dict) -> pd.DataFrame:
    """Filter the sales table and enrich it with the product table (the expensive, big result)."""
    low, high = filters.get("quantity") or [1, 50]
    sales = SALES[SALES["region"].isin(filters.get("regions") or [])
                  & SALES["quantity"].between(low, high)]
    merged = sales.merge(PRODUCTS, on="product", how="inner")
    merged = merged[merged["category"].isin(filters.get("categories") or [])].reset_index(drop=True)
    merged["revenue"] = merged["quantity"] * merged["price"]
    merged["margin"] = merged["revenue"] - merged["quantity"] * merged["unit_cost"]
    return merged


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


# -- app -------------------------------------------------------------------------------------------
app = dash.Dash(__name__, title="dash-state demo")
server = app.server  # for gunicorn: gunicorn usage:server
# References, identity cookies and stored values are protected with keys derived from SECRET_KEY. Set
# DASH_STATE_SECRET_KEY to a long random value shared by all workers (gunicorn, several hosts); without
# it, dash-state uses a random key of this process, which is fine for `python usage.py`.
if os.environ.get("DASH_STATE_SECRET_KEY"):
    app.server.config["SECRET_KEY"] = os.environ["DASH_STATE_SECRET_KEY"]

CARD = {"background": "#fff", "border": "1px solid #dde2e8", "borderRadius": "8px", "padding": "14px"}
CELL = {"padding": "4px 8px", "textAlign": "right", "whiteSpace": "nowrap", "borderBottom": "1px solid #eef1f5"}
LABEL = {"fontWeight": 600, "fontSize": "13px", "marginBottom": "4px", "display": "block"}

app.layout = html.Div(style={"fontFamily": "system-ui, sans-serif", "background": "#f4f6f9",
                             "padding": "20px 28px", "minHeight": "100vh"}, children=[
    html.H2("Sales explorer", style={"margin": "0 0 4px"}),
    html.P(f"{N_ROWS:,} generated sales rows, filtered and merged with a product table on the server. "
           "The merged DataFrame lives in a ServerStore: the browser only holds a short reference.",
           style={"color": "#555", "marginTop": 0}),
    ServerStore(id="filters-store", storage_type="session"),
    ServerStore(id="merged-store", storage_type="memory"),
    html.Div(style={**CARD, "display": "flex", "gap": "28px", "alignItems": "flex-start"}, children=[
        html.Div(style={"flex": "2"}, children=[
            html.Label("Regions", style=LABEL),
            dcc.Dropdown(id="region", options=REGIONS, value=REGIONS, multi=True)]),
        html.Div(style={"flex": "1.3"}, children=[
            html.Label("Product categories", style=LABEL),
            dcc.Checklist(id="category", options=CATEGORIES, value=CATEGORIES, inline=True,
                          inputStyle={"marginRight": "4px"}, labelStyle={"marginRight": "12px"})]),
        html.Div(style={"flex": "2"}, children=[
            html.Label("Quantity per order", style=LABEL),
            dcc.RangeSlider(id="quantity", min=1, max=50, step=1, value=[1, 50],
                            marks={q: str(q) for q in (1, 10, 20, 30, 40, 50)})]),
    ]),
    html.Div(style={"display": "flex", "gap": "16px", "marginTop": "16px"}, children=[
        html.Div(style={**CARD, "flex": "3", "minWidth": 0}, children=[  # minWidth: the graph may shrink
            dcc.Graph(id="revenue-graph", style={"height": "380px"}, config={"displaylogo": False})]),
        html.Div(style={**CARD, "flex": "1.2", "fontSize": "14px"}, children=[
            html.H4("Where the data lives", style={"margin": "0 0 8px"}),
            html.Div(id="state-panel"),
            # the same words as the legend of the dev tools' Stores panel (debug=True)
            html.P(["Server: bytes the server keeps for the store. Browser: bytes of the store's ",
                    html.Code("data"), " in the browser (the reference)."],
                   style={"color": "#888", "fontSize": "12px", "marginBottom": 0})]),
    ]),
    # Shared and live: one list for everyone, one per user (every tab); changes appear in every open page.
    ServerStore(id="team-notes", scope="app", live=True, writable=True, data=[]),
    ServerStore(id="bookmarks", scope="user", live=True, data=[]),
    html.Div(style={"display": "flex", "gap": "16px", "marginTop": "16px"}, children=[
        html.Div(style={**CARD, "flex": "1"}, children=[
            html.H4("Team notes: everyone, live", style={"margin": "0 0 8px"}),
            html.Div(style={"display": "flex", "gap": "8px"}, children=[
                dcc.Input(id="note-text", placeholder="a note for everyone", style={"flex": "1"}),
                html.Button("Pin note", id="pin-note")]),
            html.Ul(id="notes-list", style={"margin": "8px 0 0", "paddingLeft": "20px"})]),
        html.Div(style={**CARD, "flex": "1"}, children=[
            html.H4("My bookmarks: all my tabs, live", style={"margin": "0 0 8px"}),
            html.Button("Bookmark these filters", id="bookmark"),
            html.Ul(id="bookmarks-list", style={"margin": "8px 0 0", "paddingLeft": "20px"})]),
    ]),
    html.Div(style={**CARD, "marginTop": "16px"}, children=[
        html.Div(id="row-count", style={"fontWeight": 600, "marginBottom": "8px"}),
        dash_table.DataTable(id="table", page_size=20, style_table={"overflowX": "auto"},
                             style_cell={"fontSize": "13px", "padding": "4px 8px"},
                             style_header={"fontWeight": 600, "background": "#eef1f5"})]),
])


# -- callbacks: plain Dash; the stores' data arrives and leaves as real values ---------------------
@app.callback(Output("filters-store", "data"),
              Input("region", "value"), Input("category", "value"), Input("quantity", "value"))
def save_filters(regions, categories, quantity):
    return {"regions": regions or [], "categories": categories or [], "quantity": quantity}


@app.callback(Output("merged-store", "data"), Input("filters-store", "data"))
def merge(filters):
    if filters is None:
        return dash.no_update
    return merge_sales(filters)  # a DataFrame: kept on the server, the browser gets a reference


@app.callback(Output("revenue-graph", "figure"), Output("table", "data"), Output("table", "columns"),
              Output("row-count", "children"), Input("merged-store", "data"))
def show(merged):
    if merged is None or merged.empty:
        return go.Figure(layout={"title": "No data for these filters"}), [], [], "0 rows"
    monthly = (merged.assign(month=merged["date"].dt.to_period("M").dt.to_timestamp())
               .groupby(["month", "region"], as_index=False)["revenue"].sum())
    figure = go.Figure(
        [go.Scatter(x=g["month"], y=g["revenue"], mode="lines+markers", name=region)
         for region, g in monthly.groupby("region")],
        layout={"title": "Revenue by month and region", "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
                "yaxis": {"title": "Revenue"}, "legend": {"orientation": "h", "y": -0.15}})
    head = merged.head(20).assign(date=lambda d: d["date"].dt.strftime("%Y-%m-%d")).round(2)
    columns = [{"name": c, "id": c} for c in head.columns]
    return (figure, head.to_dict("records"), columns,
            f"{len(merged):,} rows after filtering and merging (first 20 shown)")


# Live, shared stores: a Patch appends to the current list on the server (no update is lost when two
# windows write at once), and every open page gets the new list and re-renders.
@app.callback(Output("team-notes", "data"), Output("note-text", "value"), Input("pin-note", "n_clicks"),
              State("note-text", "value"), prevent_initial_call=True)
def pin_note(_, text):
    if not text:
        return dash.no_update, dash.no_update
    notes = Patch()
    notes.append(text[:200])
    return notes, ""


@app.callback(Output("bookmarks", "data"), Input("bookmark", "n_clicks"), State("filters-store", "data"),
              prevent_initial_call=True)
def bookmark(_, filters):
    filters = filters or {}
    low, high = filters.get("quantity") or [1, 50]
    marks = Patch()
    marks.append(f"{len(filters.get('regions') or [])} regions, {len(filters.get('categories') or [])} "
                 f"categories, quantity {low}-{high}")
    return marks


@app.callback(Output("notes-list", "children"), Input("team-notes", "data"))
def show_notes(notes):
    return [html.Li(note) for note in notes or []] or [html.Li("no notes yet", style={"color": "#888"})]


@app.callback(Output("bookmarks-list", "children"), Input("bookmarks", "data"))
def show_bookmarks(marks):
    return [html.Li(mark) for mark in marks or []] or [html.Li("no bookmarks yet", style={"color": "#888"})]


# The only dash-state specific code: monitoring. The arguments hold the real values; dash.ctx still
# has the references the browser sent, which describe() sizes up.
@app.callback(Output("state-panel", "children"),
              Input("filters-store", "modified_timestamp"), Input("merged-store", "modified_timestamp"),
              State("filters-store", "data"), State("merged-store", "data"))
def panel(_ts_filters, _ts_merged, _filters, _merged):
    manager = dash_state.get_state_manager(app)
    raw = {s["id"]: s.get("value") for s in dash.ctx.states_list}  # what the browser sent
    rows = []
    for store_id in ("filters-store", "merged-store"):
        value = raw.get(store_id)
        if isinstance(value, str) and value.startswith("dsr2."):
            info = manager.describe(store_id, value)
        else:  # empty, or rolled back to backend = "client": the data itself is in the browser
            info = {"backend": "client" if value is not None else "-", "server_bytes": 0,
                    "browser_bytes": browser_bytes(value)}  # counted as the dev tools' Stores panel does
        rows.append(html.Tr(id=f"panel-{store_id}", children=[
            html.Td(store_id, style={**CELL, "fontFamily": "monospace", "textAlign": "left"}),
            html.Td(info["backend"], style={**CELL, "textAlign": "left"}),
            html.Td(human_bytes(info["server_bytes"]), title=f"{info['server_bytes']:,} bytes", style=CELL),
            html.Td(human_bytes(info["browser_bytes"]), title=f"{info['browser_bytes']:,} bytes", style=CELL)]))
    stats = manager.stats()
    misses = sum(stats["misses"].values())
    header = [html.Th(h, style={**CELL, "textAlign": a}) for h, a in
              (("store", "left"), ("backend", "left"), ("server", "right"), ("browser", "right"))]
    return [
        html.Table([html.Thead(html.Tr(header)), html.Tbody(rows)],
                   style={"borderCollapse": "collapse", "width": "100%"}),
        html.P(f"Manager: {stats['writes']} writes ({human_bytes(stats['bytes_written'])}), "
               f"{stats['reads']} reads, {misses} misses", style={"color": "#555", "marginBottom": 0}),
    ]


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8050")))  # DASH_DEBUG=true: dev tools
