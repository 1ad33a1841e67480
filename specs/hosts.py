"""Host entries of ``{builtin: fetch, hosts: [...]}``: what a fetch may reach (pure data, no I/O).

An entry is a host name (``api.example.com``), a wildcard for its subdomains
(``*.example.com``: not the name itself), an IPv4 address or a bracketed IPv6 address
(``[::1]``), each optionally with ``:port`` (without it, any port). Only a loopback address
(``127.0.0.1``, ``[::1]``) lists loopback: a listed name that resolves to loopback, ``localhost``
included, is refused without one. A link-local address is reached only when listed itself.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

MAX_HOSTS = 64
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
HOST_PATTERN = r"^(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One parsed entry: a name or an address, a port or None (any)."""

    host: str                                   # lower-case name, ``*.suffix``, or an address's text
    port: int | None
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    def matches(self, host: str, port: int) -> bool:
        """Whether a URL's host (lower-case; an address without brackets) and port are this entry."""
        if self.port is not None and self.port != port:
            return False
        if self.address is not None:
            try:
                return ipaddress.ip_address(host) == self.address
            except ValueError:
                return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host

    @property
    def loopback(self) -> bool:
        return self.address is not None and self.address.is_loopback


def parse_host(text: str) -> HostEntry:
    """The entry ``text`` names; ValueError saying what is wrong."""
    if not isinstance(text, str) or not text or len(text) > 260:
        raise ValueError("a host entry is a non-empty string of at most 260 characters")
    value = text.strip().lower()
    port: int | None = None
    if "/" in value or "@" in value:
        raise ValueError(f"'{text}' is not a host: write the host name alone (no scheme, user or path), "
                         "as in api.example.com or 127.0.0.1:8080")
    if value.startswith("["):
        inner, _, rest = value[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"'{text}': after ']' only ':port' may follow")
        host, port_text = inner, rest[1:] if rest else ""
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    elif ":" in value:
        raise ValueError(f"'{text}': write an IPv6 address in brackets, as in [::1] or [::1]:8080")
    else:
        host, port_text = value, ""
    if port_text or value.endswith(":"):
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"'{text}': the port must be a number from 1 to 65535")
        port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None and (value.startswith("[") or not _NAME.match(host)):
        raise ValueError(f"'{text}' is not a host name, '*.domain', an IPv4 address or a bracketed "
                         "IPv6 address (each with an optional ':port'); write no scheme or path")
    if address is not None and address.is_unspecified:
        raise ValueError(f"'{text}' is the unspecified address; list the address to reach")
    return HostEntry(host if address is None else str(address), port, address)


def _check_host(text: str) -> str:
    parse_host(text)
    return text


FetchHost = Annotated[str, AfterValidator(_check_host),
                      WithJsonSchema({"type": "string", "pattern": HOST_PATTERN, "maxLength": 260})]
