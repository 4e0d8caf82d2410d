"""HTTP from this node (the smoke test's requests to a service), every call with a timeout."""

from __future__ import annotations


class Http:
    def get(self, url: str, timeout: float) -> tuple[bool, str]:
        """(answered, body or the reason there was no answer). An HTTP error status is an answer:
        the request reached a pod."""
        # here, not at the top: urllib.request brings http.client, email and ssl (20 ms), and only the
        # smoke test's requests need them
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return True, resp.read(65536).decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return True, str(exc)
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            return False, str(getattr(exc, "reason", exc))
