"""The project's own error type (shown as one line, without a traceback) and message hygiene."""

import re

CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


class FerAgeError(Exception):
    """An error the user can act on (bad params, missing input, unreachable store); the message says how."""


def redact(text: str) -> str:
    """``text`` with the credentials of every URI in it (``scheme://user:secret@host``) replaced by ``***``."""
    return CREDENTIALS.sub(r"\g<scheme>***@", str(text))
