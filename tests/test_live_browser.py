"""User and app stores in headless Chromium: two tabs of one browser, two browsers (two users), live
and not live; the page follows a change made elsewhere and its callbacks fire."""
from __future__ import annotations

import os

import pytest
from apps import new_app
from dash import Input, Output, Patch, html
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dash_state import ServerStore

pytestmark = pytest.mark.browser


def app_with(backend: str = "memory", **config):
    app = new_app(STATE_BACKEND=backend, **config)
    app.layout = html.Div([
        html.Button("+1", id="inc"), html.Button("post", id="post"), html.Button("note", id="note"),
        ServerStore(id="count", scope="user", live=True, data=0),
        ServerStore(id="quiet", scope="user", data=0),  # a user store that is not live
        ServerStore(id="board", scope="app", live=True, writable=True, data=[]),
        html.Div(id="count-out"), html.Div(id="quiet-out"), html.Div(id="board-out"), html.Div(id="fired"),
    ])

    @app.callback(Output("count", "data"), Output("quiet", "data"), Input("inc", "n_clicks"),
                  prevent_initial_call=True)
    def inc(n):
        return n, n

    @app.callback(Output("board", "data"), Input("post", "n_clicks"), prevent_initial_call=True)
    def post(n):
        patch = Patch()
        patch.append(f"post {n}")
        return patch

    @app.callback(Output("count-out", "children"), Output("fired", "children"), Input("count", "data"))
    def show_count(count):
        show_count.calls = getattr(show_count, "calls", 0) + 1
        return f"count {count}", f"fired {show_count.calls}"

    @app.callback(Output("quiet-out", "children"), Input("quiet", "data"), Input("note", "n_clicks"))
    def show_quiet(quiet, _):
        return f"quiet {quiet}"

    @app.callback(Output("board-out", "children"), Input("board", "data"))
    def show_board(board):
        return " | ".join(board or []) or "empty"

    return app


def text(driver, element_id):
    """The element's text, or None while the page has not rendered it."""
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else None


def wait_text(driver, element_id, expected, timeout=10):
    try:
        WebDriverWait(driver, timeout).until(lambda d: text(d, element_id) == expected)
    except TimeoutException:  # the message reads the page when the wait ends, not before it starts
        raise AssertionError(f"#{element_id} never read {expected!r} in {timeout} s "
                             f"(reads {text(driver, element_id)!r})") from None


def second_browser():
    """Another browser (its own cookies: another anonymous user), headless Chromium as dash_duo's."""
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options)


@pytest.mark.parametrize("transport", ["sse", "poll"])
def test_two_tabs_of_one_browser_share_a_live_user_store(dash_duo, transport):
    app = app_with(STATE_LIVE_TRANSPORT=transport, STATE_LIVE_POLL_SECONDS=0.5)
    dash_duo.start_server(app)
    driver = dash_duo.driver
    first = driver.current_window_handle
    dash_duo.wait_for_text_to_equal("#count-out", "count 0")
    driver.execute_script("window.open(arguments[0])", dash_duo.server_url)
    second = [handle for handle in driver.window_handles if handle != first][0]
    driver.switch_to.window(second)
    wait_text(driver, "count-out", "count 0")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.dash_state.liveStatus().connected"))
    driver.find_element(By.ID, "inc").click()
    wait_text(driver, "count-out", "count 1")
    driver.switch_to.window(first)
    wait_text(driver, "count-out", "count 1")  # pushed: nothing was clicked in this tab
    assert text(driver, "fired") == "fired 2" or text(driver, "fired").startswith("fired")
    assert text(driver, "quiet-out") == "quiet 0"  # not live: this tab still shows what it read
    driver.find_element(By.ID, "note").click()  # its next callback reads the user's current value
    wait_text(driver, "quiet-out", "quiet 1")
    status = driver.execute_script("return window.dash_state.liveStatus()")
    assert status["transport"] == transport and status["messages"] >= 2, status
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_two_users_share_the_app_store_but_not_their_user_stores(dash_duo):
    app = app_with()
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#board-out", "empty")
    other = second_browser()
    try:
        other.get(dash_duo.server_url)
        wait_text(other, "board-out", "empty")
        WebDriverWait(other, 10).until(lambda d: d.execute_script("return window.dash_state.liveStatus().connected"))
        dash_duo.find_element("#inc").click()
        dash_duo.wait_for_text_to_equal("#count-out", "count 1")
        dash_duo.find_element("#post").click()
        dash_duo.wait_for_text_to_equal("#board-out", "post 1")
        wait_text(other, "board-out", "post 1")  # the app store: pushed to the other user
        assert text(other, "count-out") == "count 0"  # the user store: the other user's own value
        other.find_element(By.ID, "post").click()
        wait_text(other, "board-out", "post 1 | post 1")  # a Patch on the current list, not the page's copy
        dash_duo.wait_for_text_to_equal("#board-out", "post 1 | post 1")
    finally:
        other.quit()


def test_a_page_that_reloads_gets_the_latest_value(dash_duo):
    app = app_with()
    dash_duo.start_server(app)
    dash_duo.wait_for_text_to_equal("#count-out", "count 0")
    for expected in (1, 2, 3):
        dash_duo.find_element("#inc").click()
        dash_duo.wait_for_text_to_equal("#count-out", f"count {expected}")
    dash_duo.driver.refresh()
    dash_duo.wait_for_text_to_equal("#count-out", "count 3")
    dash_duo.wait_for_text_to_equal("#quiet-out", "quiet 3")
