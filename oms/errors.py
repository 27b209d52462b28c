"""Domain errors raised by the services; the admin, the API and the commands translate them."""


class DomainError(Exception):
    """A business rule refused the action. The message is written for the person who asked."""

    def __init__(self, message: str, *, code: str = "refused", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


class IllegalTransition(DomainError):
    """A status change the life cycle does not allow (the API answers 409)."""

    def __init__(self, message: str):
        super().__init__(message, code="illegal_transition", field="status")
