"""``state_managed_callback``: a callback's function receives ServerStore values as keyword arguments.

    @state_managed_callback(store_mappings={"filters": "phenotypic-filters-store"})
    @callback(Output("table", "data"), Input("go", "n_clicks"))
    def table(n, filters, user_session_id):
        ...

Each mapped store is loaded with :meth:`~dash_state.glue.store_api.StoreAPI.get_store_data` into the
keyword argument of that name (the page's value if the callback has the store as Input or State,
else this user's latest); ``user_session_id`` is passed only when the function's signature asks for
it (the logged-in user's id, else the anonymous browser's namespace). Every other argument is what
Dash passes.

Both orders work. Below ``@callback`` the decorator returns a wrapper, which Dash registers. Above
it, Dash has already registered the inner function: the decorator finds that registration (the app's
``callback_map``, ``dash.callback``'s global map, background job registries) and points it at the
wrapper, so the order of decorators does not matter.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
USER_ARGUMENT = "user_session_id"
_MARK = "__dash_state_managed__"


def state_managed_callback(func: F | None = None, *, store_mappings: dict[str, Any] | None = None) -> Any:
    """Decorate a Dash callback function (either side of ``@callback``); see the module docstring."""
    mappings = dict(store_mappings or {})
    for name in mappings:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"state_managed_callback: {name!r} is not a keyword argument name")

    def decorate(fn: F) -> F:
        if getattr(fn, _MARK, False):
            raise TypeError("state_managed_callback is applied twice to the same function")
        wrapper = _wrapper(fn, mappings)
        if _redirect_registrations(fn, wrapper):  # above @callback: Dash calls the inner function
            return fn
        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def _wrapper(fn: Callable[..., Any], mappings: dict[str, Any]) -> Callable[..., Any]:
    parameters = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    missing = [name for name in mappings if name not in parameters and not takes_any]
    if missing:
        raise TypeError(f"state_managed_callback: {fn.__name__}() has no parameter {', '.join(missing)} "
                        "for store_mappings")
    wants_user = USER_ARGUMENT in parameters

    def inject(kwargs: dict) -> dict:
        from dash_state import get_state_manager

        manager = get_state_manager()
        for name, store_id in mappings.items():
            if name not in kwargs:
                kwargs[name] = manager.get_store_data(store_id)
        if wants_user and USER_ARGUMENT not in kwargs:
            who = manager.identity()
            kwargs[USER_ARGUMENT] = None if who is None else who.label
        return kwargs

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def managed(*args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **inject(kwargs))
    else:
        @functools.wraps(fn)
        def managed(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **inject(kwargs))

    setattr(managed, _MARK, True)
    return managed


def _redirect_registrations(fn: Callable[..., Any], wrapper: Callable[..., Any]) -> bool:
    """Point every registered callback (and background job) that calls ``fn`` at ``wrapper``."""
    import dash

    from dash_state.glue import compat

    maps = [compat.get("dash._callback:GLOBAL_CALLBACK_MAP")]
    try:
        maps.append(dash.get_app().callback_map)
    except Exception:  # noqa: BLE001 - no app yet: dash.callback's global map is the only place
        pass
    found = False
    for callback_map in maps:
        for entry in list(callback_map.values()):
            registered = entry.get("callback")
            if getattr(registered, "__wrapped__", None) is fn:
                found |= _swap_cell(registered, fn, wrapper)
    for manager in compat.background_managers():
        for job in list(getattr(manager, "func_registry", {}).values()):
            job = getattr(job, "_decorated_fun", job)  # Celery tasks
            found |= _swap_cell(getattr(job, "__wrapped__", None) and job, fn, wrapper)
    return found


def _swap_cell(function: Any, old: Callable[..., Any], new: Callable[..., Any]) -> bool:
    """Replace ``old`` by ``new`` in the closure of ``function`` (Dash's ``add_context`` wrapper keeps
    the user function in a closure cell); False if there is none."""
    swapped = False
    for cell in getattr(function, "__closure__", None) or ():
        try:
            if cell.cell_contents is old:
                cell.cell_contents = new
                swapped = True
        except ValueError:  # an empty cell
            continue
    return swapped
