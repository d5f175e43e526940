"""The server-side store without Dash: the manager and Python API, references, keys, the seal,
codecs, values, versions and scoped (user/app) stores."""
