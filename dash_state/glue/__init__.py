"""Everything that touches Dash: the plugin and its hooks, the callback hook, the layout walk,
the HTTP routes, the clientside and mirror glue, background callbacks, and the fence around Dash's
private names (``compat``)."""
