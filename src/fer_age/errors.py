"""The project's own error type: shown to the user as one line, without a traceback."""


class FerAgeError(Exception):
    """An error the user can act on (bad params, missing input, unreachable store); the message says how."""
