"""Which network addresses the crawler may connect to, checked where the connection is made.

A seed, a link or a redirect can name a host that resolves to the machine itself, the local
network or a cloud metadata service (169.254.169.254). Checking the URL's host name is not
enough (any name can resolve anywhere, and resolve differently a second time), so the check
is in the connection: the name is resolved once, every address is judged, and the socket is
opened to an address that passed, never to the name. urllib3 still sends the name in the
Host header and as the TLS server name, so nothing else changes for the server.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Optional, Union

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

IpAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IpNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class PrivateAddress(urllib3.exceptions.HTTPError):
    """Every address of a host is refused. Not an OSError, so urllib3 passes it up unchanged."""


def kind_of(ip: IpAddress) -> Optional[str]:
    """Why an address is not on the public internet, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "not global"  # e.g. 100.64.0.0/10, shared address space


@dataclass(frozen=True)
class AddressPolicy:
    allow_all: bool = False              # allow_private_networks: true
    networks: tuple[IpNetwork, ...] = ()  # allow_private_networks: [10.1.0.0/16, ...]

    @classmethod
    def from_setting(cls, setting: bool | list[str]) -> "AddressPolicy":
        if isinstance(setting, bool):
            return cls(allow_all=setting)
        return cls(networks=tuple(ipaddress.ip_network(n, strict=False) for n in setting))

    def refusal(self, address: str) -> Optional[str]:
        """None if the crawler may connect to `address`, else why not."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
        kind = kind_of(ip)
        if kind is None or self.allow_all or any(ip in n for n in self.networks):
            return None
        return f"{address} ({kind})"


class _Guarded:
    """`_new_conn` of urllib3's connections, resolving once and connecting only to allowed addresses."""

    policy: AddressPolicy
    host: str
    port: int
    timeout: Optional[float]
    source_address: Optional[tuple[str, int]]
    socket_options: Optional[list[tuple[int, int, int]]]
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        verdicts = {str(info[4][0]): self.policy.refusal(str(info[4][0])) for info in infos}
        allowed = [a for a, refused in verdicts.items() if refused is None]
        if not allowed:
            raise PrivateAddress(f"{self.host} resolves to {', '.join(r for r in verdicts.values() if r)}: "
                                 "not a public address (scope.allow_private_networks)")
        error: Optional[OSError] = None
        for address in allowed:
            try:
                return connection.create_connection((address, self.port), self.timeout, source_address=self.source_address,
                                                    socket_options=self.socket_options)
            except socket.timeout as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. "  # type: ignore[arg-type]
                                                f"(connect timeout={self.timeout})") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error  # type: ignore[arg-type]


def pool_manager(num_connections: int, policy: AddressPolicy) -> urllib3.PoolManager:
    """A pool manager whose connections only reach addresses `policy` allows."""
    pool = urllib3.PoolManager(num_pools=256, maxsize=num_connections, block=False, retries=False)
    if policy.allow_all:
        return pool
    http = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), {"policy": policy})
    https = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), {"policy": policy})
    pool.pool_classes_by_scheme = {  # type: ignore[assignment]
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }
    return pool
