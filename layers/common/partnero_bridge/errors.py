"""Failure kinds that decide what happens to a queued delivery.

Processing code raises these; the batch processor turns them into a retry with back-off
(within the delivery's retry window, BRIDGE_RETRY_WINDOW_SECONDS) or a dead-lettered message
with the reason. Anything else that escapes is treated as retryable, so an unexpected bug
never loses a delivery.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """Base class: processing a delivery did not finish."""

    kind = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableError(DeliveryError):
    """A transient cause (timeout, 429, 5xx, missing configuration): try again later.

    ``retry_after``: seconds the remote asked to wait (Retry-After), honoured as the least
    back-off.
    """

    kind = "retryable"

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying cannot help (a request Partnero rejects as invalid): dead-letter at once."""

    kind = "permanent"


class ConfigurationError(RetryableError):
    """A secret or setting is missing or wrong; retried so nothing is lost while it is fixed."""

    kind = "configuration"


class NotYetKnown(RetryableError):
    """What this delivery refers to is not recorded yet (events arrive out of order).

    Retried like any transient failure, in case the event it depends on is still on its
    way; when its retry window ends (or at the receive backstop) it becomes an outcome
    instead of a dead letter.
    """

    kind = "not_yet_known"
