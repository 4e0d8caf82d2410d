"""Expected failures: each says what went wrong and what to do, and is shown without a traceback."""

from __future__ import annotations


class WizardError(Exception):
    """A failure the operator can act on."""

    exit_code = 1

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}" if self.fix else self.what


class InputError(WizardError):
    """Bad answers or bad usage: nothing was touched."""

    exit_code = 2


class AnswersInvalidError(InputError):
    """An answers file with problems; its text is one FILE:LINE:COL line per problem."""


class EtcdError(WizardError):
    """etcd could not be reached or refused us; `kind` tells which (refused, timeout, tls, auth, ...)."""

    def __init__(self, what: str, fix: str = "", kind: str = "error") -> None:
        super().__init__(what, fix)
        self.kind = kind


class Interrupted(WizardError):
    exit_code = 130

    def __init__(self) -> None:
        super().__init__("interrupted", "run `flannel-wizard undo` to roll back what earlier steps changed")
