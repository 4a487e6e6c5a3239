"""User-facing errors: one clear line, shown by the CLI (exit code 2) and the UI."""


class StarVidError(ValueError):
    """Bad input or a missing resource, described in one line a user can act on."""


def first_problem(exc) -> tuple[str, str]:
    """(where, what) of a pydantic ``ValidationError``'s first problem: the dotted field path
    ("objects.0.boxes", "" at the top) and pydantic's message without its "Value error, "."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return where, first["msg"].removeprefix("Value error, ")
