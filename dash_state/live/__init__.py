"""Live stores: a change to a user- or app-scoped store reaches every open page that holds it.

* :mod:`.hub`: per process, which open page (stream or poll) watches which store pointer, woken when
  one changes;
* :mod:`.sources`: how a process hears of changes made by other processes and hosts, through the
  backend the app already runs (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, or reading the watched
  pointers of the host-local store or another database a few times a second);
* :mod:`.route`: the ``_dash-state/v1/live`` route: a Server-Sent Events stream where the server can
  hold a connection, a conditional poll elsewhere. Only versions and references signed for the
  receiving user travel on it, never a value.
"""
