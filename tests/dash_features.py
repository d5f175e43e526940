"""What the installed Dash can do: marks for tests of Dash features that older supported releases lack
(the version matrix, noxfile.py, runs the suite on each Dash minor from 3.1). Each mark names the feature
and the release that brought it (Dash's CHANGELOG); the README's table lists the same."""
import dash
import pytest

from dash_state.glue.compat import version_tuple

DASH = version_tuple(dash.__version__)


def needs(version: tuple[int, int], feature: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(DASH < version, reason=f"Dash {dash.__version__} has no {feature} "
                                                     f"(Dash {version[0]}.{version[1]}+)")


DEVTOOL_HOOK = needs((3, 2), "dev-tools hook (hooks.devtool): no dash-state panel")
SIDE_UPDATE_PATCH = needs((3, 3), "Patch in set_props/running side updates or dash_clientside.Patch")
SERVERS = needs((4, 2), "FastAPI and Quart servers")
MCP = needs((4, 3), "MCP layer")
RENDERER_4_2 = needs((4, 2), "renderer fixes of 4.2 that dcc.Store's tests rely on (remounting, #3570)")
WEBSOCKET_STORES = needs((4, 4), "websocket internals dash-state needs for ServerStores (set_prop_sync)")
