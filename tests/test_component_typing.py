"""ServerStore's generated class: `data` is documented and typed to take a DataFrame, Series or numpy array,
and such a value passes Dash's prop checks, in Python and in the browser's dev-mode validation."""
import ast
import inspect
import json
from pathlib import Path

import dash
import numpy as np
import pandas as pd
import pytest
from dash import Input, Output, html

import dash_state
from dash_state import ServerStore

GENERATED = Path(dash_state.__file__).with_name("ServerStore.py")


def test_type_checkers_see_dataframe_series_and_ndarray_for_data():
    tree = ast.parse(GENERATED.read_text(encoding="utf-8"))
    checking = next(node for node in tree.body if isinstance(node, ast.If)
                    and ast.unparse(node.test) == "typing.TYPE_CHECKING")
    frame_type = next(node for node in checking.body if isinstance(node, ast.Assign)
                      and ast.unparse(node.targets[0]) == "FrameType")
    assert ast.unparse(frame_type.value) == "typing.Union[pandas.DataFrame, pandas.Series, numpy.ndarray]"
    init = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    data = next(arg for arg in init.args.args if arg.arg == "data")
    assert "FrameType" in ast.unparse(data.annotation)


def test_importing_the_component_imports_neither_pandas_nor_numpy():
    import subprocess
    import sys

    code = "import sys, dash_state.ServerStore; print('pandas' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_docstring_says_a_dataframe_series_or_array_is_accepted():
    doc = " ".join(ServerStore.__doc__.split())
    assert "A pandas DataFrame, a pandas Series or a numpy array is accepted too, as the whole value" in doc


def test_dash_mcp_still_describes_data_with_json_types():
    """Dash's MCP layer derives JSON schemas from these hints; a tool caller sends JSON."""
    from dash.mcp.primitives.tools.input_schemas.schema_callback_type_annotations import (
        annotation_to_json_schema,
    )

    schema = annotation_to_json_schema(inspect.signature(ServerStore.__init__).parameters["data"].annotation)
    assert {json.dumps(s, sort_keys=True) for s in schema["anyOf"]} == {
        '{"additionalProperties": true, "type": "object"}', '{"items": {}, "type": "array"}',
        '{"type": "number"}', '{"type": "string"}', '{"type": "boolean"}', '{"type": "null"}'}


@pytest.mark.parametrize("value", [pd.DataFrame({"a": [1, 2]}), pd.Series([1.5, 2.5]), np.arange(4)])
def test_the_constructor_accepts_frames_series_and_arrays(value):
    store = ServerStore(id="x", data=value)
    assert store.data is value


@pytest.mark.browser
def test_a_dataframe_passes_the_browsers_dev_mode_prop_validation(dash_duo):
    frame = pd.DataFrame({"region": ["North", "South"], "revenue": [1.5, 2.5]})
    app = dash.Dash(__name__)
    app.server.config.update(SECRET_KEY="k", STATE_BACKEND="memory")
    app.layout = html.Div([ServerStore(id="initial", data=frame), ServerStore(id="written"),
                           html.Button("go", id="go"), html.Div(id="out")])

    @app.callback(Output("written", "data"), Input("go", "n_clicks"), prevent_initial_call=True)
    def write(_):
        return frame.assign(revenue=frame["revenue"] * 2)

    @app.callback(Output("out", "children"), Input("initial", "data"), Input("written", "data"))
    def show(initial, written):
        total = 0 if written is None else written["revenue"].sum()
        return f"{type(initial).__name__} {initial['revenue'].sum()} {total}"

    dash_duo.start_server(app, debug=True, use_reloader=False, dev_tools_props_check=True,
                          dev_tools_hot_reload=False)
    dash_duo.wait_for_text_to_equal("#out", "DataFrame 4.0 0")
    dash_duo.find_element("#go").click()
    dash_duo.wait_for_text_to_equal("#out", "DataFrame 4.0 8.0")
    assert dash_duo.find_elements(".dash-fe-error__title") == []  # no "Invalid prop for component" popup
    assert dash_duo.get_logs() == []
