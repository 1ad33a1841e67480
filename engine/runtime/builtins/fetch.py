"""fetch: an HTTP GET to the hosts an agent lists, and nowhere else.

``{builtin: fetch, hosts: [...]}`` (specs/hosts.py) is the whole list: a URL whose host (and
port, when the entry names one) is not in it is refused, and so is every redirect hop that
leaves it (redirects are followed here, each hop checked again, at most ``MAX_REDIRECTS``).
The host is resolved before connecting and every address it resolves to is checked: a
loopback address only when a loopback address is listed, a link-local one only when that
address is listed, an unspecified one never (so a listed name that resolves to 127.0.0.1, or
to the cloud metadata address, reaches nothing). The connection goes to the address that was
checked (the Host header and TLS SNI keep the name), so a second DNS answer cannot move it.
No proxy or environment setting is used. A response is read to at most ``max_bytes`` (the rest
is cut, and said so), and a call takes at most ``TIMEOUT`` seconds in all.
"""

import asyncio
import ipaddress
import socket
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from agentform.specs.hosts import HostEntry, parse_host

from . import take_caller

MAX_URL = 2048
DEFAULT_BYTES = 256 * 1024
MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = 30.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TEXTUAL = ("text/", "json", "xml", "javascript", "yaml", "csv")


def hosts_of(node: Any) -> list[HostEntry]:
    """Every host the agent's fetch entries list."""
    return [parse_host(h) for use in node.spec.tools if use.builtin == "fetch" for h in use.hosts or ()]


async def checked_address(url: Any, hosts: list[HostEntry]) -> str:
    """The address to connect to for ``url``, once its host, port and every resolved address pass."""
    if url.scheme not in ("http", "https"):
        raise ToolError(f"fetch reaches http and https URLs only (got '{url.scheme}:')")
    if url.userinfo:
        raise ToolError("a fetch URL carries no user name or password")
    host = url.host.lower().rstrip(".")
    port = url.port or (443 if url.scheme == "https" else 80)
    if not host:
        raise ToolError(f"the URL {url} names no host")
    if not any(entry.matches(host, port) for entry in hosts):
        listed = ", ".join(_shown(e) for e in hosts)
        raise ToolError(f"host {_with_port(host, port)} is not one this agent may fetch from (its hosts: {listed})")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ToolError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
    if not addresses:
        raise ToolError(f"{host} resolves to no address")
    for address in addresses:
        why = _refused(address, hosts)
        if why:
            shown = host if str(address) == host else f"{host} (which resolves to {address})"
            raise ToolError(f"fetch refuses {shown}: {why}")
    return str(addresses[0])


def _refused(address: Any, hosts: list[HostEntry]) -> str:
    plain = getattr(address, "ipv4_mapped", None) or address
    if plain.is_unspecified:
        return "the unspecified address is never reached"
    if plain.is_loopback and not any(e.loopback for e in hosts):
        return "it is a loopback address, and no loopback address (such as 127.0.0.1) is listed in hosts"
    if plain.is_link_local and not any(e.address == plain for e in hosts):
        return f"it is a link-local address; list {plain} itself in hosts to reach it"
    return ""


def _shown(entry: HostEntry) -> str:
    host = f"[{entry.host}]" if entry.address is not None and entry.address.version == 6 else entry.host
    return host if entry.port is None else f"{host}:{entry.port}"


def _with_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def fetch_url(url_text: str, hosts: list[HostEntry], max_bytes: int) -> dict[str, Any]:
    """GET ``url_text`` within ``hosts``, following checked redirects; the response as data."""
    import httpx

    try:
        url = httpx.URL(url_text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ToolError(f"not a URL: {exc}") from None
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False, verify=True,
                                 timeout=httpx.Timeout(TIMEOUT)) as client:
        for hop in range(MAX_REDIRECTS + 1):
            address = await checked_address(url, hosts)
            headers = {"Host": url.netloc.decode("ascii"), "User-Agent": "agentform-fetch",
                       "Accept-Encoding": "identity"}
            extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
            request = client.build_request("GET", url.copy_with(host=address), headers=headers,
                                           extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise ToolError(f"fetch {url} failed: {type(exc).__name__}: {exc}") from None
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    if hop == MAX_REDIRECTS:
                        raise ToolError(f"fetch {url_text}: more than {MAX_REDIRECTS} redirects")
                    url = url.join(location)
                    continue
                return await _body(url, response, max_bytes)
            finally:
                await response.aclose()
    raise AssertionError("unreachable")


async def _body(url: Any, response: Any, max_bytes: int) -> dict[str, Any]:
    chunks, size, cut = [], 0, False
    async for chunk in response.aiter_raw():
        if size + len(chunk) > max_bytes:
            chunks.append(chunk[:max_bytes - size])
            cut = True
            break
        chunks.append(chunk)
        size += len(chunk)
    raw = b"".join(chunks)
    kind = response.headers.get("content-type", "")
    out: dict[str, Any] = {"url": str(url), "status": response.status_code, "contentType": kind,
                           "bytes": len(raw)}
    if cut:
        out["truncated"] = True
    if kind and not any(t in kind.lower() for t in _TEXTUAL) or b"\0" in raw[:4096]:
        out["text"] = None
        out["note"] = "binary content is not returned"
    else:
        out["text"] = raw.decode(response.charset_encoding or "utf-8", errors="replace")
    return out


def make_server(ctx: Any) -> MCPServer:
    server = MCPServer("fetch")

    @server.tool(description="GET a web page or API over http(s) from the hosts you are allowed, and return "
                 "its status, content type and text (cut at max_bytes). Redirects are followed within those hosts.")
    async def fetch(url: Annotated[str, Field(min_length=1, max_length=MAX_URL)], context: Context,
                    max_bytes: Annotated[int, Field(ge=1, le=MAX_BYTES)] = DEFAULT_BYTES) -> dict[str, Any]:
        hosts = hosts_of(take_caller(context.request_context.meta).node)
        if not hosts:
            raise ToolError("this agent lists no hosts for fetch")
        try:
            async with asyncio.timeout(TIMEOUT):
                return await fetch_url(url, hosts, max_bytes)
        except TimeoutError:
            raise ToolError(f"fetch {url} took longer than {TIMEOUT:g} s") from None

    return server
