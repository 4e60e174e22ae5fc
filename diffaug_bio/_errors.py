"""The one exception type that means "the user's input is wrong", not "the program is broken"."""


class InputError(ValueError):
    """Bad input or bad usage: the CLI prints the message on one line and exits with status 2."""
