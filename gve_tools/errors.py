"""The base of the tooling's own exceptions: a command reports any of them as `error: <message>` and exits 1."""


class GVEToolsError(Exception):
    """Something a command cannot do with what it was given; the message says what and why."""
