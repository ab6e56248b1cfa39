"""The one error class meant for users.

A UserError is caught at the edges (CLI, web UI) and shown as a single line that says what is
wrong and how to fix it. Any other exception is a bug and keeps its traceback in the log.
"""


class UserError(Exception):
    """A problem with the user's input or machine, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split("\n")))
