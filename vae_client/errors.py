"""Exceptions raised by the client: one for answers the service refused, one for no answer."""

import httpx


class VAEError(Exception):
    """Base class of every error this package raises."""


class VAEServiceError(VAEError):
    """The service answered with an error: its HTTP status, stable `code` and `detail`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail

    @classmethod
    def from_response(cls, response: httpx.Response) -> "VAEServiceError":
        """Read the service's {"error", "detail"} body; anything else becomes code http_<status>."""
        try:
            body = response.json()
            return cls(response.status_code, str(body["error"]), str(body["detail"]))
        except (ValueError, KeyError, TypeError):
            text = response.text.strip()[:200] or response.reason_phrase
            return cls(response.status_code, f"http_{response.status_code}", text)


class VAEConnectionError(VAEError):
    """The service could not be reached, or did not answer in time."""
