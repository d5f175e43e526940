# AUTO GENERATED FILE - DO NOT EDIT

import typing  # noqa: F401
from typing_extensions import TypedDict, NotRequired, Literal # noqa: F401
from dash.development.base_component import Component, _explicitize_args
try:
    from dash.types import NumberType  # noqa: F401
except ImportError:
    # Backwards compatibility for dash<=4.1.0
    if typing.TYPE_CHECKING:
        raise
    NumberType = typing.Union[  # noqa: F401
        typing.SupportsFloat, typing.SupportsInt, typing.SupportsComplex
    ]

if typing.TYPE_CHECKING:
    import numpy
    import pandas

    FrameType = typing.Union[pandas.DataFrame, pandas.Series, numpy.ndarray]
else:  # nothing beyond the JSON types at run time (see src_js/dash_prop_typing.py)
    FrameType = str


ComponentSingleType = typing.Union[str, int, float, Component, None]
ComponentType = typing.Union[
    ComponentSingleType,
    typing.Sequence[ComponentSingleType],
]


class ServerStore(Component):
    """A ServerStore component.
ServerStore keeps JSON data in the browser, exactly like dcc.Store
(same props, same storage keys and timestamps, same update rules).
On the server, dash-state replaces `data` with a short opaque
reference to the real value, so only that reference travels to the
browser and is kept in memory, sessionStorage or localStorage.
While the page is in use, the server keeps that value alive (sliding
expiry); once the page is idle or closed, it expires after its TTL. A
page that goes away releases the values it held only in memory.
clear_data also deletes the server value. A value written in the
browser (a clientside callback, running=, a clientside Patch) is sent
to the server and replaced by its reference, without firing the
store's callbacks again. With scope='user' or 'app', one value is
shared by all of a user's pages or by everybody, and live=True brings
its changes made elsewhere to this page. It renders nothing.

Keyword arguments:

- id (string | dict; required):
    The ID used to identify this component in Dash callbacks; it must
    be unique in the app. A dict ID (pattern-matching callbacks) works
    too. Browser storage uses the ID as its key: a string ID as is, a
    dict ID as its JSON text with the keys sorted.

- clear_data (boolean; default False):
    Set to True to delete the stored value: `data` becomes None and
    `clear_data` goes back to False.

- data (dict | list | number | string | boolean; optional):
    The stored value: any JSON value, as with dcc.Store. A pandas
    DataFrame, a pandas Series or a numpy array is accepted too, as
    the whole value (not nested in a dict or list), and Python
    callbacks get it back as the same type (on the 'client' backend it
    travels through the browser in a typed JSON form). On a server
    backend this prop holds, in the browser, a short opaque reference
    that stands for the value kept on the server. A store that a
    clientside callback uses is mirrored: the browser holds its data,
    as with dcc.Store.

- live (boolean; default False):
    On a 'user' or 'app' store: when the value changes anywhere
    (another tab, worker or host), this page gets the new value and
    the store's callbacks fire, as if a callback on this page had
    written it.

- modified_timestamp (number; default -1):
    When the stored value last changed, in milliseconds since the
    epoch (-1 if never).

- scope (a value equal to: 'page', 'user', 'app'; default 'page'):
    Whose value this store holds: 'page': one value per page, as
    dcc.Store (the default). 'user': one value per user, shared by all
    their tabs, browsers and devices. 'app': one value for everyone,
    held once on the server (callbacks may write it only with
    writable=True). The server's config can override it per store
    ([STATE_STORES.<id>] scope = ...).

- storage_type (a value equal to: 'local', 'session', 'memory'; default 'memory'):
    Where the browser keeps `data`: 'memory': in this component only,
    lost when the page reloads. 'local': window.localStorage, kept
    after the browser is closed and shared by the tabs of the same
    origin. 'session': window.sessionStorage, kept for the browser
    tab's session. If the browser refuses the storage (quota, private
    mode), this store falls back to 'memory' and logs a warning.

- writable (boolean; default False):
    On an 'app' store: callbacks may write it."""
    _children_props: typing.List[str] = []
    _base_nodes = ['children']
    _namespace = 'dash_state'
    _type = 'ServerStore'


    def __init__(
        self,
        id: typing.Optional[typing.Union[str, dict]] = None,
        storage_type: typing.Optional[Literal["local", "session", "memory"]] = None,
        data: typing.Optional[typing.Union[dict, typing.Sequence, NumberType, str, bool, FrameType]] = None,
        clear_data: typing.Optional[bool] = None,
        modified_timestamp: typing.Optional[NumberType] = None,
        scope: typing.Optional[Literal["page", "user", "app"]] = None,
        live: typing.Optional[bool] = None,
        writable: typing.Optional[bool] = None,
        **kwargs
    ):
        self._prop_names = ['id', 'clear_data', 'data', 'live', 'modified_timestamp', 'scope', 'storage_type', 'writable']
        self._valid_wildcard_attributes =            []
        self.available_properties = ['id', 'clear_data', 'data', 'live', 'modified_timestamp', 'scope', 'storage_type', 'writable']
        self.available_wildcard_properties =            []
        _explicit_args = kwargs.pop('_explicit_args')
        _locals = locals()
        _locals.update(kwargs)  # For wildcard attrs and excess named props
        args = {k: _locals[k] for k in _explicit_args}

        for k in ['id']:
            if k not in args:
                raise TypeError(
                    'Required argument `' + k + '` was not specified.')

        super(ServerStore, self).__init__(**args)

setattr(ServerStore, "__init__", _explicitize_args(ServerStore.__init__))
