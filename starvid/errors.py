"""User-facing errors: one clear line, shown by the CLI (exit code 2) and the UI."""


class StarVidError(ValueError):
    """Bad input or a missing resource, described in one line a user can act on."""
