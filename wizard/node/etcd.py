"""The one etcd adapter: the v3 API through etcd3 (gRPC), the v2 keys API over HTTP for old flanneld.

Both give the same small interface, so the steps never know which API, or the demo's in-memory store,
is behind it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from wizard.errors import EtcdError

if TYPE_CHECKING:
    import ssl

    from wizard.answers import Etcd
    from wizard.node import CommandsLike
    from wizard.node.files import Files


class Store(ABC):
    endpoint: str = ""

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def get(self, key: str) -> tuple[str, int] | None:
        """(value, revision of its last change) or None when absent."""

    @abstractmethod
    def create(self, key: str, value: str) -> int | None:
        """Write only if the key does not exist (`etcdctl mk`); the new revision, or None if it existed."""

    @abstractmethod
    def cas(self, key: str, value: str, revision: int) -> int | None:
        """Replace only if the key is still at `revision`; the new revision, or None if it moved."""

    @abstractmethod
    def delete_if(self, key: str, revision: int) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[tuple[str, str]]: ...

    def close(self) -> None:
        return None


# ---------------------------------------------------------------- which API flanneld reads

# flannel v0.18.0 (2022-05) moved from the etcd v2 keys API to v3; each sees only its own keys
V3_SINCE = (0, 18, 0)
# `flanneld --version` prints flannel's version.Version and exits: `0.7.1` from the CentOS 7 package,
# `v0.26.1` (git describe, maybe `-3-gabc1234-dirty`) from upstream builds; it writes to stderr
_VERSION = re.compile(r"(?<![\w.])v?(\d+)\.(\d+)(?:\.(\d+))?(?![\w.])")
VERSION_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ApiChoice:
    """The etcd API the wizard uses for this node, and why (said in the etcd step's plan)."""

    api: Literal["v2", "v3"]
    why: str
    release: tuple[int, int, int] | None = None  # what `flanneld --version` printed; None when none could be read
    reads: Literal["v2", "v3", ""] = ""  # the API that flanneld reads, "" when unknown

    @property
    def flanneld(self) -> str:
        """The release as said in messages (`0.7.1`), "" when unknown."""
        return ".".join(map(str, self.release)) if self.release else ""


def parse_flanneld_version(text: str) -> tuple[int, int, int] | None:
    """(0, 7, 1) from `0.7.1`, (0, 26, 1) from `v0.26.1` or `v0.26.1-3-gabc1234`; None when no version is there."""
    for line in text.splitlines():
        match = _VERSION.search(line.strip())
        if match:
            return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    return None


def api_of(version: tuple[int, int, int]) -> Literal["v2", "v3"]:
    return "v3" if version >= V3_SINCE else "v2"


def flanneld_reads(commands: CommandsLike) -> tuple[tuple[int, int, int] | None, Literal["v2", "v3", ""], str]:
    """(release, the API that flanneld reads, why) from `flanneld --version`; (None, "", why) when
    flanneld is not installed or did not tell."""
    if commands.which("flanneld") is None:
        return None, "", "flanneld is not installed"
    result = commands.run("flanneld", "--version", timeout=VERSION_TIMEOUT_S)
    said = (result.err + "\n" + result.out).strip()
    version = parse_flanneld_version(said) if result.ok else None
    if version is None:
        first = said.splitlines()[0][:120] if said else f"exit status {result.rc}"
        return None, "", f"`flanneld --version` did not give a version ({first})"
    shown = ".".join(map(str, version))
    reads: Literal["v2", "v3"] = api_of(version)
    if reads == "v2":
        return version, reads, f"flanneld {shown} (older than v0.18.0) reads only the v2 keys API"
    return version, reads, f"flanneld {shown} (v0.18.0 or later) reads only the v3 API"


def choose_api(commands: CommandsLike, settings: Etcd) -> ApiChoice:
    """The API for `etcd.api`: v2 or v3 as given, or for `auto` the one the installed flanneld reads
    (v3 when there is no flanneld to ask: every flanneld released since 2022 reads v3)."""
    version, reads, why = flanneld_reads(commands)
    if settings.api in ("v2", "v3"):
        return ApiChoice(settings.api, "etcd.api says so", version, reads)  # type: ignore[arg-type]
    if reads:
        return ApiChoice(reads, why, version, reads)
    return ApiChoice("v3", f"{why}; v3, which every flanneld since v0.18.0 (2022) reads", version, reads)


def resolved(settings: Etcd, choice: ApiChoice) -> Etcd:
    """The settings with `api` as chosen: what a connection, and the journal's record of a write, use."""
    return settings if settings.api == choice.api else settings.model_copy(update={"api": choice.api})


def connect(settings: Etcd, password: str | None, files: Files) -> Store:
    """Try each endpoint in turn; the first that answers within timeout_s wins. `api: auto` must be
    resolved first (`resolved`): here it means v3."""
    errors: list[EtcdError] = []
    for endpoint in settings.endpoints:
        try:
            store: Store = (
                V2Store(endpoint, settings, password, files)
                if settings.api == "v2"
                else V3Store(endpoint, settings, password, files)
            )
            store.version()
            return store
        except EtcdError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    what = "; ".join(e.what for e in errors)
    raise EtcdError(f"no etcd endpoint answered: {what}", errors[-1].fix, errors[-1].kind)


def _fix(kind: str) -> str:
    return {
        "refused": "check that etcd runs and listens there (etcd --listen-client-urls), and the port",
        "timeout": "check the address, firewalls between this node and etcd, or raise etcd.timeout_s",
        "tls": "check ca_file, cert_file and key_file, and that the endpoint uses https:// with the CA that signed the server",
        "auth": "check etcd.username and the password (password_env / password_file)",
        "denied": "grant the user a role that may read and write the prefix (etcdctl role grant-permission)",
        "files": "check the TLS file paths",
    }.get(kind, "check the etcd endpoints and settings")


def etcd_error(endpoint: str, kind: str, text: str) -> EtcdError:
    what = {
        "refused": f"etcd at {endpoint} refused the connection",
        "timeout": f"etcd at {endpoint} did not answer in time",
        "tls": f"etcd at {endpoint} rejected the TLS handshake",
        "auth": f"etcd at {endpoint} rejected the username or password",
        "denied": f"etcd at {endpoint} denied access",
    }.get(kind, f"etcd at {endpoint} failed")
    return EtcdError(f"{what} ({text})" if text else what, _fix(kind), kind)


# ---------------------------------------------------------------- v3


def load_v3() -> None:
    """Import etcd3 and gRPC the way the wizard needs them (also for tests and benchmarks that use etcd3)."""
    # etcd3 0.12's generated code fails to import with protobuf >= 4's C implementation: its messages
    # are built from their serialized descriptors instead, or else on the pure-Python runtime
    from wizard.node import etcdrpc

    if not etcdrpc.install():
        os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
    # gRPC's C core prints its own lines (SSL alerts, connect failures) to stderr; we report one error instead.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    os.environ.setdefault("GRPC_TRACE", "")
    # Steps run commands (fork + exec) while this channel is open; gRPC's fork handlers then
    # abort the child now and then (systemctl "killed by signal 6"). We never use gRPC in a child.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    import etcd3  # noqa: F401
    import grpc  # noqa: F401


class V3Store(Store):
    def __init__(self, endpoint: str, settings: Etcd, password: str | None, files: Files) -> None:
        load_v3()
        import etcd3
        import grpc

        self._grpc = grpc
        self.endpoint = endpoint
        parts = urlsplit(endpoint)
        self.timeout = settings.timeout_s
        kwargs: dict[str, Any] = {}
        if parts.scheme == "https":
            try:
                kwargs["ca_cert"] = str(files.path(settings.ca_file)) if settings.ca_file else _system_ca()
                if settings.cert_file and settings.key_file:
                    kwargs["cert_cert"] = str(files.path(settings.cert_file))
                    kwargs["cert_key"] = str(files.path(settings.key_file))
                    for path in (kwargs["cert_cert"], kwargs["cert_key"], kwargs["ca_cert"]):
                        open(path, "rb").close()
            except OSError as exc:
                raise EtcdError(f"cannot read TLS file {exc.filename}: {exc.strerror}", _fix("files"), "files") from None
        try:
            self.client = etcd3.client(
                parts.hostname, parts.port, timeout=self.timeout,
                user=settings.username if password is not None else None, password=password,
                # a cluster's leases come back in one response (`list`), ~190 bytes each: gRPC's default
                # 4 MiB limit would refuse it from ~21 000 nodes on. etcdctl lifts it the same way.
                grpc_options=[("grpc.max_receive_message_length", -1)],
                **kwargs,
            )
        except grpc.RpcError as exc:
            raise self._translate(exc) from None
        except Exception as exc:  # etcd3 wraps the grpc error in its own class
            raise self._translate(exc) from None
        if password is not None and not self.client.uses_secure_channel:
            # gRPC refuses call credentials on a plain channel; etcd3 also sends the token as metadata,
            # which is all etcd needs, so the plain-http + auth case works with that alone.
            self.client.call_credentials = None
            self.client.watcher.call_credentials = None

    def _translate(self, exc: BaseException) -> EtcdError:
        grpc = self._grpc
        rpc = exc if isinstance(exc, grpc.RpcError) else exc.__context__
        if not isinstance(rpc, grpc.RpcError):
            return etcd_error(self.endpoint, "error", str(exc))
        code, details = rpc.code(), (rpc.details() or "")
        debug = getattr(rpc, "debug_error_string", lambda: "")() or ""
        low = (details + " " + debug).lower()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return etcd_error(self.endpoint, "timeout", f"no answer within {self.timeout:g}s")
        if any(w in low for w in ("ssl", "tls", "tsi_", "unwrap failed", "handshake", "certificate", "alert")):
            return etcd_error(self.endpoint, "tls", "handshake failed")
        if "authentication failed" in low or code == grpc.StatusCode.UNAUTHENTICATED:
            return etcd_error(self.endpoint, "auth", "authentication failed")
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return etcd_error(self.endpoint, "denied", details)
        if "user name is empty" in low or "token" in low:
            return etcd_error(self.endpoint, "auth", "authentication required")
        if "connection refused" in low:
            return etcd_error(self.endpoint, "refused", "connection refused")
        if code == grpc.StatusCode.UNAVAILABLE:
            return etcd_error(self.endpoint, "timeout" if "timeout" in low or "deadline" in low else "refused", details.split(";")[0])
        return etcd_error(self.endpoint, "error", details)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._translate(exc) from None

    def version(self) -> str:
        return str(self._call(self.client.status).version)

    def get(self, key: str) -> tuple[str, int] | None:
        value, meta = self._call(self.client.get, key)
        return None if value is None else (value.decode(errors="replace"), meta.mod_revision)

    def _txn(self, compare: Any, key: str, value: str) -> int | None:
        tx = self.client.transactions
        ok, _ = self._call(self.client.transaction, compare=[compare], success=[tx.put(key, value)], failure=[])
        if not ok:
            return None
        found = self.get(key)
        return found[1] if found else None

    def create(self, key: str, value: str) -> int | None:
        return self._txn(self.client.transactions.version(key) == 0, key, value)

    def cas(self, key: str, value: str, revision: int) -> int | None:
        return self._txn(self.client.transactions.mod(key) == revision, key, value)

    def delete_if(self, key: str, revision: int) -> bool:
        tx = self.client.transactions
        ok, _ = self._call(self.client.transaction, compare=[tx.mod(key) == revision], success=[tx.delete(key)], failure=[])
        return bool(ok)

    def list(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) under `prefix`, in key order (etcd sorts a range by key), in one Range call.

        Serializable: the member we talk to answers from its own copy, without a round of the
        cluster's quorum; a listing of leases (a count, a table, look-ups) can be a heartbeat behind,
        and the writes (`create`, `cas`) still compare revisions against the leader. One RangeResponse
        decoded by protobuf's C runtime (etcdrpc.install), not a KVMetadata object per key as etcd3's
        get_prefix makes: 16 000 leases in ~30 ms."""
        from etcd3 import etcdrpc, utils

        start = prefix.encode()
        request = etcdrpc.RangeRequest(key=start, range_end=utils.increment_last_byte(start), serializable=True)
        response = self._call(self.client.kvstub.Range, request, self.timeout, credentials=self.client.call_credentials,
                              metadata=self.client.metadata)
        return [(kv.key.decode(errors="replace"), kv.value.decode(errors="replace")) for kv in response.kvs]

    def close(self) -> None:
        self.client.close()


def _system_ca() -> str:
    import ssl

    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile


# ---------------------------------------------------------------- v2


class V2Store(Store):
    """The v2 keys API (flanneld before v0.18 reads only this), over plain HTTP(S). ssl and urllib.request
    (with http.client and email: 15 ms) are imported here, not at the top: a v3 run never needs them."""

    def __init__(self, endpoint: str, settings: Etcd, password: str | None, files: Files) -> None:
        import ssl

        self.endpoint = endpoint
        self.timeout = settings.timeout_s
        self.context: ssl.SSLContext | None = None
        if endpoint.startswith("https://"):
            try:
                self.context = ssl.create_default_context(cafile=str(files.path(settings.ca_file)) if settings.ca_file else None)
                if settings.cert_file and settings.key_file:
                    self.context.load_cert_chain(str(files.path(settings.cert_file)), str(files.path(settings.key_file)))
            except OSError as exc:
                raise EtcdError(f"cannot read TLS file {exc.filename or ''}: {exc.strerror or exc}", _fix("files"), "files") from None
        self.auth = None
        if settings.username and password is not None:
            token = base64.b64encode(f"{settings.username}:{password}".encode()).decode()
            self.auth = f"Basic {token}"

    def _request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        import ssl
        import urllib.error
        import urllib.request

        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        if self.auth:
            req.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            if exc.code == 401:
                raise etcd_error(self.endpoint, "auth", "authentication failed") from None
            if exc.code == 403:
                raise etcd_error(self.endpoint, "denied", "permission denied") from None
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:
                raise etcd_error(self.endpoint, "error", f"HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLError):
                raise etcd_error(self.endpoint, "tls", "handshake failed") from None
            if isinstance(reason, ConnectionRefusedError):
                raise etcd_error(self.endpoint, "refused", "connection refused") from None
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise etcd_error(self.endpoint, "timeout", f"no answer within {self.timeout:g}s") from None
            raise etcd_error(self.endpoint, "error", str(reason)) from None
        except (TimeoutError, OSError) as exc:
            if isinstance(exc, ssl.SSLError):
                raise etcd_error(self.endpoint, "tls", "handshake failed") from None
            raise etcd_error(self.endpoint, "timeout", f"no answer within {self.timeout:g}s") from None

    def _keys(self, key: str) -> str:
        return "/v2/keys" + urllib.parse.quote(key)

    def version(self) -> str:
        _, body = self._request("GET", "/version")
        return str(body.get("etcdserver", "?"))

    def get(self, key: str) -> tuple[str, int] | None:
        status, body = self._request("GET", self._keys(key))
        if status == 404:
            return None
        node = body.get("node", {})
        return node.get("value", ""), int(node.get("modifiedIndex", 0))

    def create(self, key: str, value: str) -> int | None:
        status, body = self._request("PUT", self._keys(key) + "?prevExist=false", {"value": value})
        return int(body["node"]["modifiedIndex"]) if status in (200, 201) else None

    def cas(self, key: str, value: str, revision: int) -> int | None:
        status, body = self._request("PUT", self._keys(key) + f"?prevIndex={revision}", {"value": value})
        return int(body["node"]["modifiedIndex"]) if status in (200, 201) else None

    def delete_if(self, key: str, revision: int) -> bool:
        status, _ = self._request("DELETE", self._keys(key) + f"?prevIndex={revision}")
        return status == 200

    def list(self, prefix: str) -> list[tuple[str, str]]:
        status, body = self._request("GET", self._keys(prefix.rstrip("/")) + "?recursive=true")
        if status == 404:
            return []
        return sorted((n["key"], n.get("value", "")) for n in body.get("node", {}).get("nodes", []) if not n.get("dir"))
