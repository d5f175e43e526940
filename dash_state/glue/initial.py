"""Initial ``data=`` of ServerStores in component trees: layouts, pages, and components callbacks return.

A layout is served to crawlers, health checks and every visitor, so serving it must not cost server
state per request:

* a static layout's initial data is the same for everyone: it is stored once per app, under a key
  derived from the store and the value (scope ``a``, namespace ``@app``), and written again only
  when it is missing or half its TTL old. A thousand cookie-less GETs store one value;
* a layout *function*'s data may differ per user: for a request that has an identity (a logged-in
  user, or a browser that sent dash-state's cookie) it is stored in that user's namespace under a key
  derived from the value; for a request without a cookie (a crawler, or a browser's first visit,
  whose cookie is minted by this very response) it is stored once per app by content, like static
  data, so cookie-less GETs store nothing per visitor;
* components returned by a callback belong to that callback's user;
* a user- or app-scoped store (:mod:`dash_state.core.shared`) gets the reference of its current value. Until
  a user first writes one, it holds the app-wide copy of its initial data. An app store's initial data
  is a write by the server: when a layout serves data other than what the layout last wrote, it
  becomes the next version (a static ``data=0`` is written once; a layout function that computes the
  list of tables writes the new list when it changes).

The validation layout that Dash embeds in the index page gets its stores' data removed instead.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dash.development.base_component import Component

from dash_state.backends import Item
from dash_state.core import browser_form, references, shared
from dash_state.core.ids import store_key
from dash_state.core.references import APP, APP_OWNER, SERVER
from dash_state.core.values import freeze
from dash_state.glue.layout import declared, find_stores, rewrite_stores, with_data

SEED_TTL = 30 * 86400  # how long a marker of what a layout wrote into an app store is remembered

if TYPE_CHECKING:
    from dash_state.glue.runtime import AppState


def serve_tree(state: "AppState", tree: Any, user: Any = None) -> Any:
    """Register the tree's ServerStores and move their initial ``data`` server-side.

    ``user`` is None for a layout being served, else the callback's user (True: the current one).
    """
    def replace(store: Component) -> Component:
        store_id = getattr(store, "id", None)
        state.store_ids.add(store_id, declared(store))
        data = getattr(store, "data", None)
        sid = store_key(store_id) if store_id is not None else "?"
        settings = state.manager.settings(sid)
        if settings.shared:
            return _scoped(state, store, sid, settings, data, user)
        if getattr(store, "scope", None) not in (None, "page"):  # rolled back: one page's store, not live
            store = with_data(store, data)
            store.scope, store.live = "page", False
        if data is None or references.looks_like_reference(data):
            return store
        if not state.manager.keeps_on_server(sid):  # the client backend: the data goes to the browser
            return _for_browser(store, sid, data)
        return with_data(store, _store_initial(state, sid, data, user))

    return rewrite_stores(tree, replace)


def _scoped(state: "AppState", store: Component, sid: str, settings: Any, data: Any, user: Any) -> Component:
    """A user or app store: its current value's reference, and its effective settings as props."""
    manager = state.manager
    if references.looks_like_reference(data):
        data = None
    if settings.scope == "app" and data is not None:
        _seed_app(state, sid, data)
    who = None if user is True else user
    if settings.scope == "user" and who is None:
        ident = manager.identity(create=False)
        who = ident if ident is not None and not ident.minted else None
    token = shared.initial_reference(manager, sid, settings, who) if (who is not None or settings.scope == "app") \
        else None
    if token is None and data is not None:  # no value yet: the app-wide copy of the initial data
        token = _shared(state, sid, data) if not callable(getattr(state.app, "layout", None)) else \
            manager.commit([manager.prepare(sid, data)], scope=APP, stable=True)[0]
    clone = with_data(store, token)
    clone.scope, clone.live, clone.writable = settings.scope, settings.live, settings.writable
    return clone


def _seed_app(state: "AppState", sid: str, data: Any) -> None:
    """Write an app store's layout data as its next version, unless the layout already wrote this data."""
    if state.seeded.get(sid, (None,))[0] is data:
        return  # the same object as last time in this process (a static layout)
    manager = state.manager
    pending = manager.prepare(sid, data)
    marker = references.digest_key(b"seed", sid.encode("utf-8", "surrogatepass"), bytes(pending.snapshot.to_bytes()))
    at = shared.current(manager, sid, pending.settings)
    if at.key is None or not at.backend.alive(APP_OWNER, marker):
        shared.write(manager, sid, lambda _: pending)
        at.backend.set_many(APP_OWNER, [Item(marker, freeze(1), max(SEED_TTL, pending.settings.ttl))])
    state.seeded[sid] = (data,)


def _store_initial(state: "AppState", sid: str, data: Any, user: Any) -> str:
    manager = state.manager
    if user is not None:  # inside a callback: that user's data
        token = manager.commit([manager.prepare(sid, data)], None if user is True else user, SERVER, stable=True)[0]
        return token
    if callable(getattr(state.app, "layout", None)):  # a new tree per request: nothing to remember
        who = manager.identity(create=False)
        if who is not None and not who.minted:
            return manager.commit([manager.prepare(sid, data)], who, SERVER, stable=True)[0]
        return manager.commit([manager.prepare(sid, data)], scope=APP, stable=True)[0]
    return _shared(state, sid, data)


def _shared(state: "AppState", sid: str, data: Any) -> str:
    """The app-wide copy of a static layout's initial data: written once, kept alive while served."""
    manager = state.manager
    now = time.monotonic()
    known = state.initial.get((sid, id(data)))
    if known is not None and known[1] is data:
        token, _, fresh_until = known
        owned = manager.owned(sid, token)
        if now < fresh_until and owned and \
                manager.backend(owned.ref.backend).alive(references.APP_OWNER, owned.ref.key):
            return token
    pending = manager.prepare(sid, data)
    token = manager.commit([pending], scope=APP, stable=True)[0]
    state.initial[(sid, id(data))] = (token, data, now + pending.settings.ttl / 2)
    state.initial_tokens[sid] = token
    return token


def initial_token(state: "AppState", sid: str) -> str | None:
    """The reference of a store's initial layout data, in any process: the one this process served, else
    the static layouts' (app, validation and page layouts) ``data=`` stored once per app. None for a
    store without initial data, or one only a layout function makes."""
    token = state.initial_tokens.get(sid)
    if token is not None:
        return token
    import dash

    trees = [getattr(state.app, "layout", None), getattr(state.app, "validation_layout", None)]
    trees += [page.get("layout") for page in dash.page_registry.values()]
    for tree in trees:
        if tree is None or callable(tree):
            continue
        for store in find_stores(tree):
            store_id = getattr(store, "id", None)
            data = getattr(store, "data", None)
            if store_id is not None and store_key(store_id) == sid and data is not None \
                    and not references.looks_like_reference(data):
                return _shared(state, sid, data)
    return None


def strip_tree(state: "AppState", tree: Any) -> Any:
    """The tree with server-side stores' data removed, for Dash's validation layout in the index page."""
    def strip(store: Component) -> Component:
        store_id = getattr(store, "id", None)
        state.store_ids.add(store_id, declared(store))
        if getattr(store, "data", None) is None:
            return store
        sid = store_key(store_id) if store_id is not None else "?"
        return with_data(store, None) if state.manager.keeps_on_server(sid) else _for_browser(store, sid, store.data)

    return rewrite_stores(tree, strip)


def _for_browser(store: Component, sid: str, data: Any) -> Component:
    """A client-backend store's initial data: a DataFrame, Series or array in the typed JSON form (see
    :mod:`dash_state.core.browser_form`), anything else as it is."""
    if not browser_form.is_typeable(data):
        return store
    return with_data(store, browser_form.to_browser(data, sid))
