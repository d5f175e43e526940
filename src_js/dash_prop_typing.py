"""Type hints for the generated ``dash_state/ServerStore.py`` (``dash-generate-components -t dash_prop_typing``,
see package.json's ``build:py``): Dash's generator reads ``custom_imports`` and ``custom_props`` from this module.

``data`` also accepts a pandas DataFrame or Series or a numpy array (kept on the server as such). Type checkers
see ``FrameType`` as those three types; at run time it is ``str``, already in the union, so importing
dash_state never imports pandas or numpy, and Dash's MCP layer (which turns these hints into JSON schemas for
tool callers, who send JSON) still gets the JSON types it can describe.
"""

custom_imports = {
    "ServerStore": [
        "if typing.TYPE_CHECKING:",
        "    import numpy",
        "    import pandas",
        "",
        "    FrameType = typing.Union[pandas.DataFrame, pandas.Series, numpy.ndarray]",
        "else:  # nothing beyond the JSON types at run time (see src_js/dash_prop_typing.py)",
        "    FrameType = str",
    ],
}


def _data(type_info, component_name, prop_name):
    return "typing.Union[dict, typing.Sequence, NumberType, str, bool, FrameType]"


custom_props = {"ServerStore": {"data": _data}}
