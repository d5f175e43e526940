"""Who is asking: the identity chain that decides whose namespace a request reads and writes.

1. ``set_user_context(user_id)`` (scripts, jobs, tests; inside a request it lasts for that request);
2. with ``STATE_ENABLE_USER_ISOLATION = false``, one shared namespace for everyone;
3. the logged-in user from ``STATE_USER_RESOLVER`` (flask-login, dash-auth or your function): every
   browser of that user shares one namespace;
4. otherwise an anonymous browser id from dash-state's own signed cookie (:mod:`.cookie`).

Namespaces never contain raw user ids: ``u.<BLAKE2b of the id>`` for users, ``a.<random id>`` for
anonymous browsers, so keys and log lines in Redis or SQL reveal nobody.

Logging in and out are *transitions*, detected by comparing the resolver's answer with the user the
cookie was last linked to (or made explicit with :func:`login` / :func:`logout`):

* login: the anonymous state is carried over into the user's namespace (or dropped, by config), and
  the anonymous id is rotated, so whoever planted that id in the browser can read nothing afterwards;
  references the browser still holds keep working through the cookie's list of carried-over ids;
* logout: the id is rotated again; the user's state stays for their next login ("detach") or is
  deleted ("delete").

The caller (the StateManager) performs the storage side of a transition through ``on_transition``.
"""
from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

from dash_state.core.keys import Keys
from dash_state.core.tokens import b64
from dash_state.glue import web
from dash_state.identity import cookie as cookies
from dash_state.identity.cookie import CookieState

SHARED = "shared"
_G_IDENTITY = "_dash_state_identity"
_G_COOKIE = "_dash_state_cookie"
_G_CONTEXT = "_dash_state_context_user"
_G_LOGGED_OUT = "_dash_state_logged_out"
_context_user: ContextVar[str | None] = ContextVar("dash_state_user_context", default=None)
_acting: ContextVar["Identity | None"] = ContextVar("dash_state_acting_identity", default=None)


@dataclass(frozen=True)
class Identity:
    namespace: str
    aliases: tuple[str, ...] = ()
    kind: str = "anonymous"  # "anonymous", "user", "shared", "context" or "job"
    user_id: str | None = None  # the id the login system (or set_user_context) gave; None when anonymous
    #: an anonymous browser whose cookie the server issued less than STATE_NEW_VISITOR_SECONDS ago
    new: bool = False
    #: no identity cookie came with this request: the server mints one now. Such a request proves
    #: nothing about the browser (a crawler, curl): it may not upload values (see routes.py)
    minted: bool = False

    @property
    def label(self) -> str:
        """What ``user_session_id`` receives: the user's own id, else the anonymous namespace."""
        return self.user_id if self.user_id is not None else self.namespace

    @property
    def owners(self) -> tuple[str, ...]:
        """Namespaces whose references this identity may present (its own, then carried-over ones)."""
        return (self.namespace,) + self.aliases


@dataclass(frozen=True)
class Transition:
    kind: str  # "login" or "logout"
    source: str | None  # the anonymous namespace at login, the user's namespace at logout
    target: str | None  # the user's namespace at login
    carry_over: bool = False
    delete: bool = False


@dataclass(frozen=True)
class Settings:
    isolation: bool = True
    resolver: Callable[[], str | None] = lambda: None
    cookie_name: str = "dash_state_id"
    secure: str | bool = "auto"
    host_prefix: bool = False
    max_age: float = 31 * 86400
    path: str = "/"
    carry_over: bool = True
    delete_at_logout: bool = False
    new_visitor_seconds: float = 600


def user_namespace(user_id: str) -> str:
    """The namespace of a logged-in user (or of ``set_user_context``): stable across SECRET_KEY rotations."""
    digest = hashlib.blake2b(str(user_id).encode("utf-8", "surrogatepass"), digest_size=16,
                             key=b"dash-state user namespace v1").digest()
    return "u." + b64(digest)


def anonymous_namespace(anon_id: str) -> str:
    return "a." + anon_id


# -- explicit context (outside requests, or to act for a user) -----------------------------------------
def set_user_context(user_id: str | None) -> None:
    """Act as ``user_id`` (None: back to the normal chain). Inside a request it lasts for that request."""
    if web.has_request():
        g = web.per_request()
        g[_G_CONTEXT] = user_id
        g.pop(_G_IDENTITY, None)
    else:
        _context_user.set(user_id)


@contextmanager
def user_context(user_id: str) -> Iterator[None]:
    """``with user_context("user-123"): ...``: the calls inside act for that user."""
    if web.has_request():
        previous = web.per_request().get(_G_CONTEXT)
        set_user_context(user_id)
        try:
            yield
        finally:
            set_user_context(previous)
        return
    token = _context_user.set(user_id)
    try:
        yield
    finally:
        _context_user.reset(token)


@contextmanager
def acting_as(who: "Identity") -> Iterator[None]:
    """A background job runs for the user who started it: the API calls inside act for that identity."""
    token = _acting.set(who)
    try:
        yield
    finally:
        _acting.reset(token)


def context_user() -> str | None:
    forced = web.per_request().get(_G_CONTEXT) if web.has_request() else None
    return forced if forced is not None else _context_user.get()


# -- the chain ------------------------------------------------------------------------------------------
def resolve(settings: Settings, keys: Keys, create: bool = True,
            on_transition: Callable[[Transition], None] | None = None) -> Identity | None:
    """This request's identity; None outside a request (without a context) or, with ``create`` False,
    for a browser that has no identity yet. Transitions run once, through ``on_transition``."""
    forced = context_user()
    if forced is not None:
        return Identity(user_namespace(forced), kind="context", user_id=forced)
    acting = _acting.get()
    if acting is not None:
        return acting
    if not settings.isolation:
        return Identity(SHARED, kind="shared")
    if not web.has_request():
        return None
    connection = web.connection()
    if connection is not None:  # a websocket callback: the identity its handshake proved, never minted here
        return _connection_identity(connection, create)
    g = web.per_request()
    known = g.get(_G_IDENTITY)
    if known is not None:
        return known
    user_id = settings.resolver()
    user_id = None if user_id is None else str(user_id)
    state = _pending_or_cookie(settings, keys)
    identity, new_state, transition = _decide(settings, state, user_id, create)
    if transition is not None and on_transition is not None:
        on_transition(transition)
    if new_state is not None:
        g[_G_COOKIE] = new_state
    if identity is not None:
        g[_G_IDENTITY] = identity
    return identity


# -- websocket connections --------------------------------------------------------------------------------
def handshake(settings: Settings, keys: Keys) -> Identity | None:
    """A websocket connection's identity, decided once at its handshake (an HTTP request that carries the
    page's cookies): the identity cookie's signature is checked as for any request and the resolver runs,
    but nothing is minted, refreshed or carried over, since no cookie can be sent back over a websocket.

    None (no ServerStore can be read or written on the connection) when there is no valid identity
    cookie, or when the cookie is linked to a user the resolver no longer names (a logout since the page
    loaded). A user the resolver names is that user's namespace; a login since the page loaded gets the
    anonymous state carried over at the next HTTP request, which sends the new cookie."""
    if not settings.isolation:
        return Identity(SHARED, kind="shared")
    user_id = settings.resolver()
    user_id = None if user_id is None else str(user_id)
    name = cookies.cookie_name(settings.cookie_name, settings.host_prefix, _secure(settings))
    state = cookies.decode(web.request_cookies().get(name), keys.all("identity cookie"), settings.max_age)
    if user_id is not None:
        target = user_namespace(user_id)
        linked = state is not None and state.linked == target
        aliases = tuple(anonymous_namespace(a) for a in state.aliases) if linked else ()
        return Identity(target, aliases, "user", user_id)
    if state is None or state.linked is not None:
        return None
    return Identity(anonymous_namespace(state.anon), new=state.issued + settings.new_visitor_seconds > time.time())


NO_WEBSOCKET_IDENTITY = (
    "dash-state: this websocket connection has no identity: no valid dash-state identity cookie came with its "
    "handshake (the page was not loaded from this app's index page, the cookie expired, or the user logged out "
    "since), so it can neither read nor write a ServerStore. Reload the page.")


def _connection_identity(connection: "web.websocket.Connection", create: bool) -> Identity | None:
    who = connection.identity
    who = who if isinstance(who, Identity) else None
    if who is None and create:
        from dash_state.errors import StoreValueError

        raise StoreValueError(NO_WEBSOCKET_IDENTITY)
    return who


def _refuse_over_websocket(what: str) -> None:
    if web.connection() is not None:
        from dash_state.errors import ConfigError

        raise ConfigError(f"dash-state: {what} cannot run in a websocket callback: the identity cookie it changes "
                          "can only be sent on an HTTP response. Call it in an HTTP callback (without "
                          "websocket=True) or in your login/logout view.")


def login(settings: Settings, keys: Keys, user_id: str | None = None,
          on_transition: Callable[[Transition], None] | None = None) -> Identity | None:
    """Run the login transition now (in the login view), for ``user_id`` or the resolver's user."""
    _refuse_over_websocket("on_login()")
    g = web.per_request()
    g.pop(_G_IDENTITY, None)
    user_id = user_id if user_id is not None else settings.resolver()
    if user_id is None:
        return None
    state = _pending_or_cookie(settings, keys)
    identity, new_state, transition = _decide(settings, state, user_id, True)
    if transition is not None and on_transition is not None:
        on_transition(transition)
    g[_G_COOKIE] = new_state
    g[_G_IDENTITY] = identity
    return identity


def logout(settings: Settings, keys: Keys, delete: bool | None = None,
           on_transition: Callable[[Transition], None] | None = None) -> None:
    """Run the logout transition now (in the logout view): rotate the id; detach or delete the state."""
    _refuse_over_websocket("on_logout()")
    g = web.per_request()
    g.pop(_G_IDENTITY, None)
    state = _pending_or_cookie(settings, keys)
    linked = state.linked if state is not None else None
    if linked is not None and on_transition is not None:
        remove = settings.delete_at_logout if delete is None else delete
        on_transition(Transition("logout", linked, None, delete=remove))
    g[_G_COOKIE] = CookieState.fresh()
    g.pop(_G_IDENTITY, None)
    g[_G_LOGGED_OUT] = True


def _pending_or_cookie(settings: Settings, keys: Keys) -> CookieState | None:
    pending = web.per_request().get(_G_COOKIE)
    if pending is not None:
        return pending
    name = cookies.cookie_name(settings.cookie_name, settings.host_prefix, _secure(settings))
    return cookies.decode(web.request_cookies().get(name), keys.all("identity cookie"), settings.max_age)


def _decide(settings: Settings, state: CookieState | None, user_id: str | None, create: bool
            ) -> tuple[Identity | None, CookieState | None, Transition | None]:
    """(identity, cookie to send or None, transition or None) for a resolver answer and a cookie."""
    if web.per_request().get(_G_LOGGED_OUT):
        user_id = None  # this request logged out: the resolver may still see the old user
    if user_id is not None:
        target = user_namespace(user_id)
        if state is not None and state.linked == target:
            aliases = tuple(anonymous_namespace(a) for a in state.aliases)
            return Identity(target, aliases, "user", user_id), _refresh(settings, state), None
        transition, carried = None, ()
        if state is not None and state.linked is None:  # was anonymous in this browser: a login
            source = anonymous_namespace(state.anon)
            transition = Transition("login", source, target, carry_over=settings.carry_over,
                                    delete=not settings.carry_over)
            carried = (state.anon,) if settings.carry_over else ()
        new_state = CookieState.fresh(linked=target, aliases=carried)
        identity = Identity(target, tuple(anonymous_namespace(a) for a in carried), "user", user_id)
        return identity, new_state, transition
    if state is not None and state.linked is not None:  # linked to a user who is no longer logged in
        transition = Transition("logout", state.linked, None, delete=settings.delete_at_logout)
        new_state = CookieState.fresh()
        return Identity(anonymous_namespace(new_state.anon), new=True), new_state, transition
    if state is None:
        if not create:
            return None, None, None
        state = CookieState.fresh()
        return Identity(anonymous_namespace(state.anon), new=True, minted=True), state, None
    new = state.issued + settings.new_visitor_seconds > time.time()
    return Identity(anonymous_namespace(state.anon), new=new), _refresh(settings, state), None


def _refresh(settings: Settings, state: CookieState) -> CookieState | None:
    """Re-send a cookie past half its life, so an active browser keeps its identity."""
    return state.refreshed() if state.issued + settings.max_age / 2 < time.time() else None


def _secure(settings: Settings) -> bool:
    if settings.secure == "auto":
        return web.is_secure()
    return bool(settings.secure)


def write_cookie(response: "web.ResponseView", settings: Settings, keys: Keys) -> None:
    """The response hook: send the identity cookie this request minted or rotated, if any. Never on a
    response that may be cached (static files carry Cache-Control max-age, ETags or 304)."""
    state = web.per_request().get(_G_COOKIE) if web.has_request() else None
    if state is None:
        return
    cache_control = response.header("Cache-Control") or ""
    if response.status == 304 or "public" in cache_control or "max-age" in cache_control and \
            "max-age=0" not in cache_control:
        return
    secure = _secure(settings)
    name = cookies.cookie_name(settings.cookie_name, settings.host_prefix, secure)
    path = "/" if name.startswith("__Host-") else settings.path
    response.set_cookie(name, cookies.encode(state, keys.current("identity cookie")), max_age=int(settings.max_age),
                        path=path, secure=secure, httponly=True, samesite="Lax")
    response.add_vary("Cookie")
