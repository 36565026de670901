"""The http_fetch plugin against real servers on loopback: what it returns, and everything it refuses.

Loopback is internal, so each test allows 127.0.0.1/32 (and the names it uses) explicitly, as an operator
would allow an internal service; the tests of refusals take that allowance away. The only mock is the
resolver (``fake_dns``): real DNS is not available here, and DNS rebinding needs a resolver that lies.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from ipaddress import ip_address

import jsonschema
import pytest

from agents.plugins.base import Call, PluginError
from agents.plugins.http_fetch import PLUGIN, USER_AGENT
from tests.agents import fetch_servers
from tests.agents.fetch_servers import PageServer, RawServer

_real_getaddrinfo = socket.getaddrinfo


def a_call(seconds: float = 10.0) -> Call:
    return Call(run_id="run-1", app="app", plugin="http_fetch", deadline=time.monotonic() + seconds)


def fetch(url: str, *, seconds: float = 10.0, **arguments) -> dict:
    """What the gateway does: check the arguments, call, check the result and its size."""
    arguments = {"url": url, **arguments}
    jsonschema.Draft202012Validator(PLUGIN.schema).validate(arguments)
    result = PLUGIN.function(arguments, a_call(seconds))
    jsonschema.Draft202012Validator(PLUGIN.result_schema).validate(result)
    assert len(json.dumps(result)) <= PLUGIN.limits.max_result_bytes
    return result


def refused(url: str, code: str, **arguments) -> PluginError:
    with pytest.raises(PluginError) as caught:
        fetch(url, **arguments)
    assert caught.value.code == code, (caught.value.code, caught.value.message, caught.value.detail)
    return caught.value


@pytest.fixture(autouse=True)
def fetch_settings(settings):
    settings.HTTP_FETCH_ALLOW_HOSTS = ["127.0.0.1", "localhost"]
    settings.HTTP_FETCH_ALLOW_NETWORKS = ["127.0.0.1/32"]
    settings.HTTP_FETCH_MAX_BYTES = 1024 * 1024
    settings.HTTP_FETCH_MAX_REDIRECTS = 5
    settings.HTTP_FETCH_CONNECT_TIMEOUT_S = 2.0
    settings.HTTP_FETCH_READ_TIMEOUT_S = 2.0
    settings.HTTP_FETCH_CA_BUNDLE = ""
    return settings


@pytest.fixture(scope="module")
def pages_server():
    server = PageServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture
def pages(pages_server):
    pages_server.seen.clear()
    return pages_server


@pytest.fixture
def base(pages) -> str:
    return f"http://127.0.0.1:{pages.port}"


@pytest.fixture
def raw():
    servers: list[RawServer] = []

    def start(behaviour, host="127.0.0.1") -> RawServer:
        servers.append(RawServer(behaviour, host))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def fake_dns(monkeypatch):
    """``fake_dns({"name": [[first answer], [second answer], ...]})``: the resolver answers a listed name
    with its answers in turn (the last one repeats) and records every question; other names (the IP
    literals urllib3 connects to) go to the real resolver, which does no DNS for them."""
    table: dict[str, list[list[str]]] = {}
    asked: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        key = host.decode() if isinstance(host, bytes) else host
        if key not in table:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        asked.append(key)
        answers = table[key][0] if len(table[key]) == 1 else table[key].pop(0)
        return [_answer(address, port) for address in answers]

    def install(entries: dict[str, list[list[str]]]) -> list[str]:
        table.update(entries)
        return asked

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return install


def _answer(address: str, port: int):
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


# --- the contract ------------------------------------------------------------------------------------


def test_the_schemas_are_valid_draft_2020_12_schemas():
    jsonschema.Draft202012Validator.check_schema(PLUGIN.schema)
    jsonschema.Draft202012Validator.check_schema(PLUGIN.result_schema)
    assert PLUGIN.name == "http_fetch"
    assert PLUGIN.spec()["schema"] is PLUGIN.schema


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"url": ""},
        {"url": 5},
        {"url": "http://a.example/", "method": "POST"},
        {"url": "http://a.example/", "method": "get"},
        {"url": "http://a.example/", "max_bytes": -1},
        {"url": "http://a.example/", "max_bytes": "10"},
        {"url": "http://a.example/", "headers": {"Accept": "text/html\r\nX-Injected: 1"}},
        {"url": "http://a.example/", "headers": {"Accept": 3}},
        {"url": "http://a.example/", "follow_redirects": "yes"},
        {"url": "http://a.example/", "body": "x"},
        {"url": "http://a.example/" + "a" * 9000},
    ],
)
def test_arguments_failing_the_schema_are_refused_by_it(arguments):
    validator = jsonschema.Draft202012Validator(PLUGIN.schema)
    assert not validator.is_valid(arguments)


def test_limits_leave_room_for_the_largest_body_and_a_full_connect_and_read():
    # The limits follow the settings as the process started with them (the fixture's overrides come later).
    from controlplane import settings as started

    assert PLUGIN.limits.max_result_bytes >= 6 * started.HTTP_FETCH_MAX_BYTES  # escaped text; base64 is 4/3
    assert PLUGIN.limits.timeout_s >= started.HTTP_FETCH_CONNECT_TIMEOUT_S + started.HTTP_FETCH_READ_TIMEOUT_S


def test_a_body_of_control_characters_at_the_cap_fits_the_result_budget(raw, fetch_settings):
    # json.dumps writes each control character as \\u00XX: the worst case for the result's size.
    fetch_settings.HTTP_FETCH_MAX_BYTES = 4096

    def controls(conn, stop):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4096\r\n\r\n" + b"\x01" * 4096
        )

    server = raw(controls)
    result = PLUGIN.function({"url": f"http://127.0.0.1:{server.port}/"}, a_call())
    assert result["size"] == 4096
    assert len(json.dumps(result)) <= 6 * 4096 + 64 * 1024


# --- what a fetch returns ------------------------------------------------------------------------------


def test_a_text_page_is_returned_decoded_with_its_status_type_and_size(base, pages):
    result = fetch(f"{base}/text")
    assert result["status"] == 200
    assert result["url"] == f"{base}/text"
    assert result["content_type"] == "text/plain"
    assert result["charset"] == "utf-8"
    assert result["text"] == "héllo wörld"
    assert result["size"] == len("héllo wörld".encode())
    assert result["redirects"] == 0
    assert "base64" not in result
    assert pages.seen[0]["headers"]["host"] == f"127.0.0.1:{pages.port}"
    assert pages.seen[0]["headers"]["user-agent"] == USER_AGENT


def test_the_declared_charset_decodes_the_text(base):
    result = fetch(f"{base}/latin1")
    assert (result["text"], result["charset"], result["content_type"]) == ("café", "iso8859-1", "text/html")


@pytest.mark.parametrize("charset", ["x-no-such-charset", "base64", "rot13", "hex"])
def test_an_unknown_or_non_text_charset_is_read_as_utf8(base, charset):
    result = fetch(f"{base}/charset/{charset}")
    assert (result["text"], result["charset"]) == ("ü", "utf-8")


def test_invalid_utf8_is_replaced_not_an_error(base):
    assert fetch(f"{base}/bad-utf8")["text"] == "ok\ufffd\ufffd"


@pytest.mark.parametrize(
    ("path", "status", "text"), [("/json", 200, '{"name": "é"}'), ("/problem", 400, '{"title": "bad"}')]
)
def test_json_types_are_text(base, path, status, text):
    result = fetch(base + path)
    assert (result["status"], result["text"], result["charset"]) == (status, text, "utf-8")


@pytest.mark.parametrize(("path", "body"), [("/binary", bytes(range(256))), ("/untyped", b"\x00\x01text")])
def test_other_types_come_back_as_base64(base, path, body):
    result = fetch(base + path)
    assert base64.b64decode(result["base64"]) == body
    assert "text" not in result
    assert result["size"] == len(body)


@pytest.mark.parametrize("status", [404, 500, 503])
def test_an_error_status_is_a_result_not_an_error(base, status):
    result = fetch(f"{base}/status/{status}")
    assert (result["status"], result["text"]) == (status, f"status {status}")


def test_only_the_safe_headers_are_returned(base):
    headers = fetch(f"{base}/meta")["headers"]
    assert headers == {
        "content-type": "text/plain",
        "content-length": "4",
        "etag": '"v1"',
        "last-modified": "Wed, 02 Dec 2026 12:00:00 GMT",
        "content-language": "en",
    }


def test_a_long_header_value_is_cut(base):
    assert fetch(f"{base}/long-etag")["headers"]["etag"] == "x" * 1024


def test_head_returns_no_body(base, pages):
    result = fetch(f"{base}/bytes/5000", method="HEAD")
    assert result["status"] == 200
    assert result["size"] == 0
    assert result["headers"]["content-length"] == "5000"
    assert "text" not in result
    assert "base64" not in result
    assert pages.seen[0]["method"] == "HEAD"


def test_allowed_request_headers_are_sent_and_user_agent_is_ours(base, pages):
    headers = {"accept": "application/json", "Accept-Language": "fr", "If-None-Match": '"v1"'}
    seen = json.loads(fetch(f"{base}/echo", headers=headers)["text"])["headers"]
    assert (seen["accept"], seen["accept-language"], seen["if-none-match"]) == (
        "application/json",
        "fr",
        '"v1"',
    )
    assert seen["user-agent"] == USER_AGENT
    assert seen["accept-encoding"] == "identity"
    assert "cookie" not in seen
    assert "authorization" not in seen


@pytest.mark.parametrize(
    "name", ["Cookie", "Authorization", "User-Agent", "Host", "X-Forwarded-For", "Accept-Encoding"]
)
def test_other_request_headers_are_refused_by_name(base, pages, name):
    error = refused(f"{base}/echo", "header_not_allowed", headers={name: "x"})
    assert error.detail == {"header": name}
    assert name in error.message
    assert pages.seen == []


def test_a_header_value_with_a_line_break_is_refused_by_the_function_too(base):
    with pytest.raises(PluginError) as caught:
        PLUGIN.function({"url": f"{base}/echo", "headers": {"Accept": "a\r\nX-Evil: 1"}}, a_call())
    assert caught.value.code == "invalid_header"


def test_a_method_other_than_get_and_head_is_refused_by_the_function_too(base, pages):
    with pytest.raises(PluginError) as caught:
        PLUGIN.function({"url": f"{base}/text", "method": "DELETE"}, a_call())
    assert caught.value.code == "method_not_allowed"
    assert pages.seen == []


def test_the_path_and_query_are_percent_encoded_and_the_fragment_dropped(base, pages):
    result = fetch(f"{base}/echo/café?q=a b&x=%2F#part")
    assert json.loads(result["text"])["path"] == "/echo/caf%C3%A9?q=a%20b&x=%2F"
    assert result["url"] == f"{base}/echo/caf%C3%A9?q=a%20b&x=%2F"


def test_an_ipv6_literal_host_is_fetched_over_ipv6(fetch_settings):
    server = PageServer("::1")
    try:
        fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["[::1]"]
        fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = ["::1/128"]
        result = fetch(f"http://[::1]:{server.port}/text")
    finally:
        server.stop()
    assert result["text"] == "héllo wörld"
    assert result["url"] == f"http://[::1]:{server.port}/text"
    assert server.seen[0]["headers"]["host"] == f"[::1]:{server.port}"


def test_a_name_with_a_trailing_dot_or_capitals_is_the_same_host(pages, fetch_settings):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["localhost"]
    result = fetch(f"http://LocalHost.:{pages.port}/text")
    assert result["url"] == f"http://localhost:{pages.port}/text"
    assert pages.seen[0]["headers"]["host"] == f"localhost:{pages.port}"


def test_the_next_address_is_tried_when_the_first_refuses_the_connection(pages, fetch_settings, fake_dns):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["two.example"]
    fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = ["127.0.0.0/8"]
    closed = socket.create_server(("127.0.0.3", pages.port))
    closed.close()  # nothing listens on 127.0.0.3 at the page server's port
    fake_dns({"two.example": [["127.0.0.3", "127.0.0.1"]]})
    assert fetch(f"http://two.example:{pages.port}/text")["status"] == 200


def test_proxies_in_the_environment_are_not_used(base, raw, monkeypatch):
    proxy = raw(fetch_servers.silent)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    assert fetch(f"{base}/text")["status"] == 200
    assert proxy.connections == 0


# --- the allow-list ------------------------------------------------------------------------------------


def test_an_empty_allow_list_allows_nothing(base, pages, fetch_settings):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = []
    error = refused(f"{base}/text", "host_not_allowed")
    assert error.status == 403
    assert error.detail["host"] == "127.0.0.1"
    assert pages.seen == []


def test_a_host_off_the_list_is_refused_before_it_is_resolved(fake_dns):
    asked = fake_dns({"elsewhere.example": [["127.0.0.1"]]})
    error = refused("http://elsewhere.example/", "host_not_allowed")
    assert error.detail["host"] == "elsewhere.example"
    assert asked == []


def test_a_wildcard_allows_names_under_it(pages, fetch_settings, fake_dns):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["*.Example.COM"]
    fake_dns({"api.example.com": [["127.0.0.1"]], "example.com": [["127.0.0.1"]]})
    assert fetch(f"http://API.example.com:{pages.port}/text")["status"] == 200
    refused(f"http://example.com:{pages.port}/text", "host_not_allowed")


def test_an_internationalised_name_is_compared_in_its_idna_form(pages, fetch_settings, fake_dns):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["bücher.example"]
    asked = fake_dns({"xn--bcher-kva.example": [["127.0.0.1"]]})
    result = fetch(f"http://BÜCHER.example:{pages.port}/text")
    assert result["url"] == f"http://xn--bcher-kva.example:{pages.port}/text"
    assert asked == ["xn--bcher-kva.example"]
    assert pages.seen[0]["headers"]["host"] == f"xn--bcher-kva.example:{pages.port}"


def test_star_allows_any_host_but_not_an_internal_address(base, pages, fetch_settings):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["*"]
    fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = []
    error = refused(f"{base}/text", "address_not_allowed")
    assert error.detail["address"] == "127.0.0.1"
    assert pages.seen == []


# --- schemes, userinfo, malformed URLs -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE://localhost/etc/passwd",
        "ftp://127.0.0.1/",
        "gopher://127.0.0.1:70/_GET",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "dict://127.0.0.1:11211/stats",
        "ldap://127.0.0.1/",
        "ws://127.0.0.1/",
        "jar:http://127.0.0.1/a.jar!/",
        "//127.0.0.1/relative",
        "127.0.0.1:80/x",
        "localhost:80",
    ],
)
def test_schemes_other_than_http_and_https_are_refused(url, pages):
    error = refused(url, "scheme_not_allowed")
    assert error.status == 422
    assert pages.seen == []


def test_the_scheme_is_case_insensitive(base):
    assert fetch(base.replace("http:", "HTTP:") + "/text")["status"] == 200


@pytest.mark.parametrize("userinfo", ["user:pass@", "user@", ":@", "127.0.0.1%3A{port}@"])
def test_a_url_with_userinfo_is_refused(pages, userinfo):
    refused(f"http://{userinfo.format(port=pages.port)}127.0.0.1:{pages.port}/text", "userinfo_not_allowed")
    assert pages.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.com/",
        "http://127.0.0.1\\@evil.example/",
        "http://127.0.0.1/a\tb",
        "http://127.0.0.1/\r\nHost: evil",
        " http://127.0.0.1/",
        "http:///path",
        "http://[::1/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:port/",
        "http://%31%32%37.0.0.1/",
        "http://a..b/",
    ],
)
def test_malformed_urls_are_refused(url):
    refused(url, "invalid_url")


# --- addresses: judged as resolved, never as spelled ------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("127.1", "127.0.0.1", "loopback"),
        ("127.0.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),
        ("0177.0.0.1", "127.0.0.1", "loopback"),
        ("0x7f.1", "127.0.0.1", "loopback"),
        ("0x7f000001", "127.0.0.1", "loopback"),
        ("017700000001", "127.0.0.1", "loopback"),
        ("127.0.0.1.", "127.0.0.1", "loopback"),
        ("localhost", "127.0.0.1", "loopback"),
        ("LOCALHOST", "127.0.0.1", "loopback"),
        ("localhost.", "127.0.0.1", "loopback"),
        ("[::1]", "::1", "loopback"),
        ("[0:0:0:0:0:0:0:1]", "::1", "loopback"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1", "loopback"),
        ("[::127.0.0.1]", "::7f00:1", "loopback"),
        ("[2002:7f00:1::]", "2002:7f00:1::", "loopback"),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1", "loopback"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("0", "0.0.0.0", "unspecified"),
        ("[::]", "::", "unspecified"),
    ],
)
def test_every_spelling_of_loopback_is_refused(pages, fetch_settings, host, address, reason):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["*"]
    fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = []
    error = refused(f"http://{host}:{pages.port}/text", "address_not_allowed")
    assert (ip_address(error.detail["address"]), error.detail["reason"]) == (ip_address(address), reason)
    assert error.status == 403
    assert error.detail["address"] in error.message
    assert pages.seen == []


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link_local"),
        ("100.64.0.1", "shared"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("198.18.0.1", "private"),
        ("[fe80::1]", "link_local"),
        ("[fc00::1]", "private"),
        ("[fd00:ec2::254]", "metadata"),
        ("[ff02::1]", "multicast"),
        ("[fec0::1]", "site_local"),
        ("[::ffff:169.254.169.254]", "metadata"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "loopback"),
    ],
)
def test_internal_addresses_are_refused_before_any_connection(fetch_settings, host, reason):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["*"]
    error = refused(f"http://{host}/", "address_not_allowed")
    assert error.detail["reason"] == reason


def test_a_name_that_resolves_inside_is_refused_naming_host_and_address(fake_dns, fetch_settings):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["intranet.example"]
    fake_dns({"intranet.example": [["10.1.2.3"]]})
    error = refused("http://intranet.example/", "address_not_allowed")
    assert (error.detail["host"], error.detail["address"]) == ("intranet.example", "10.1.2.3")


def test_one_internal_address_among_public_ones_refuses_the_host(fake_dns, fetch_settings, raw):
    server = raw(fetch_servers.silent)
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["mixed.example"]
    fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = []
    fake_dns({"mixed.example": [["8.8.8.8", "127.0.0.1"]]})
    error = refused(f"http://mixed.example:{server.port}/", "address_not_allowed")
    assert error.detail["address"] == "127.0.0.1"
    assert server.connections == 0


def test_allowed_networks_let_every_spelling_through_to_the_checked_address(pages, fetch_settings):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["*"]
    for host in ["127.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]"]:
        assert fetch(f"http://{host}:{pages.port}/text")["text"] == "héllo wörld"
    assert len(pages.seen) == 5


def test_a_name_that_does_not_resolve_is_dns_failed(fetch_settings):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["*"]
    error = refused("http://no-such-host.invalid/", "dns_failed")
    assert error.detail["host"] == "no-such-host.invalid"
    assert error.status == 502


# --- DNS rebinding -------------------------------------------------------------------------------------


def test_a_second_answer_of_the_resolver_cannot_change_the_target(pages, fetch_settings, fake_dns):
    # Both addresses are allowed, so only pinning keeps the request on the one that was checked.
    other = PageServer("127.0.0.2", pages.port)
    try:
        fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["rebind.example"]
        fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = ["127.0.0.0/8"]
        asked = fake_dns({"rebind.example": [["127.0.0.1"], ["127.0.0.2"]]})
        result = fetch(f"http://rebind.example:{pages.port}/echo")
    finally:
        other.stop()
    assert asked == ["rebind.example"]
    assert len(pages.seen) == 1
    assert other.seen == []
    assert json.loads(result["text"])["headers"]["host"] == f"rebind.example:{pages.port}"


def test_a_public_first_answer_then_loopback_never_reaches_loopback(raw, fetch_settings, fake_dns):
    # The rebinding attack: checked as public, then asked again in the hope of 127.0.0.1.
    server = raw(fetch_servers.silent)
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["rebind.example"]
    fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = []
    fetch_settings.HTTP_FETCH_CONNECT_TIMEOUT_S = 0.3
    asked = fake_dns({"rebind.example": [["8.8.8.8"], ["127.0.0.1"]]})
    with pytest.raises(PluginError) as caught:
        fetch(f"http://rebind.example:{server.port}/")
    assert caught.value.code in {"connect_failed", "timeout"}  # 8.8.8.8 is unreachable from here
    assert caught.value.detail["address"] == "8.8.8.8"
    assert asked == ["rebind.example"]
    assert server.connections == 0


# --- redirects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_followed_and_the_final_url_reported(base, status):
    result = fetch(f"{base}/redirect?status={status}&to=/text")
    assert (result["status"], result["url"], result["redirects"]) == (200, f"{base}/text", 1)
    assert result["text"] == "héllo wörld"


def test_a_relative_location_is_resolved_against_the_current_url(base):
    assert fetch(f"{base}/redirect?to=../text")["url"] == f"{base}/text"


def test_head_stays_head_across_a_redirect(base, pages):
    fetch(f"{base}/redirect?to=/text", method="HEAD")
    assert [seen["method"] for seen in pages.seen] == ["HEAD", "HEAD"]


def test_redirects_up_to_the_limit_are_followed(base):
    result = fetch(f"{base}/chain/5")
    assert (result["text"], result["redirects"]) == ("end of chain", 5)


def test_one_redirect_past_the_limit_is_too_many(base, pages):
    error = refused(f"{base}/chain/6", "too_many_redirects")
    assert error.detail["limit"] == 5
    assert len(pages.seen) == 6


def test_a_redirect_loop_is_too_many(base, fetch_settings):
    fetch_settings.HTTP_FETCH_MAX_REDIRECTS = 2
    refused(f"{base}/loop", "too_many_redirects")


def test_no_redirects_allowed_refuses_the_first(base, fetch_settings):
    fetch_settings.HTTP_FETCH_MAX_REDIRECTS = 0
    refused(f"{base}/redirect?to=/text", "too_many_redirects")


def test_a_redirect_not_followed_is_the_result(base, pages):
    result = fetch(f"{base}/redirect?to=/text", follow_redirects=False)
    assert (result["status"], result["headers"]["location"], result["text"]) == (302, "/text", "moved")
    assert len(pages.seen) == 1


def test_a_redirect_without_location_is_the_result(base):
    assert fetch(f"{base}/redirect-nowhere")["status"] == 302


@pytest.mark.parametrize(
    ("location", "code", "detail"),
    [
        ("http://10.0.0.1/", "address_not_allowed", {"address": "10.0.0.1"}),
        ("http://169.254.169.254/latest/meta-data/", "address_not_allowed", {"reason": "metadata"}),
        ("http://[::1]/", "address_not_allowed", {"address": "::1"}),
        ("http://0x7f.2/", "address_not_allowed", {"address": "127.0.0.2"}),
        ("http://elsewhere.example/", "host_not_allowed", {"host": "elsewhere.example"}),
        ("file:///etc/passwd", "scheme_not_allowed", {"scheme": "file"}),
        ("gopher://127.0.0.1:70/_x", "scheme_not_allowed", {"scheme": "gopher"}),
        ("http://user:pw@127.0.0.1/", "userinfo_not_allowed", {}),
    ],
)
def test_every_redirect_is_checked_from_scratch(base, pages, fetch_settings, location, code, detail):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "0x7f.2"]
    error = refused(f"{base}/redirect?to={location}", code)
    assert error.detail["redirect"] == 1
    assert detail.items() <= error.detail.items()
    assert len(pages.seen) == 1


def test_a_redirect_to_a_name_resolving_inside_is_refused(base, fetch_settings, fake_dns):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["127.0.0.1", "cdn.example"]
    fake_dns({"cdn.example": [["192.168.0.10"]]})
    error = refused(f"{base}/redirect?to=http://cdn.example/x", "address_not_allowed")
    assert (error.detail["host"], error.detail["address"]) == ("cdn.example", "192.168.0.10")


# --- size ----------------------------------------------------------------------------------------------


def test_a_body_at_the_cap_is_returned(base):
    assert fetch(f"{base}/bytes/100", max_bytes=100)["size"] == 100


def test_a_body_over_the_cap_is_too_large_with_no_body(base):
    error = refused(f"{base}/bytes/101", "too_large", max_bytes=100)
    assert error.detail["limit"] == 100
    assert error.status == 502


def test_an_argument_cannot_raise_the_configured_cap(base, fetch_settings):
    fetch_settings.HTTP_FETCH_MAX_BYTES = 1000
    assert refused(f"{base}/bytes/1001", "too_large", max_bytes=10**9).detail["limit"] == 1000


@pytest.mark.parametrize("behaviour", [fetch_servers.endless, fetch_servers.endless_chunked])
def test_a_body_without_length_is_cut_off_at_the_cap(raw, fetch_settings, behaviour):
    fetch_settings.HTTP_FETCH_MAX_BYTES = 200_000
    server = raw(behaviour)
    refused(f"http://127.0.0.1:{server.port}/", "too_large")


def test_a_declared_length_over_the_cap_is_refused_without_waiting_for_the_body(raw):
    server = raw(fetch_servers.lying_length)
    started = time.monotonic()
    refused(f"http://127.0.0.1:{server.port}/", "too_large")
    assert time.monotonic() - started < 1.0


def test_a_compressed_body_is_capped_by_its_decoded_size(base):
    # gzip sent although identity was asked for: 100 kB of zeros in a few hundred bytes of Content-Length.
    refused(f"{base}/gzip/100000", "too_large", max_bytes=10_000)
    assert fetch(f"{base}/gzip/10")["text"] == "0" * 10


# --- time ----------------------------------------------------------------------------------------------


def test_a_server_that_never_answers_times_out_at_the_read_timeout(raw, fetch_settings):
    fetch_settings.HTTP_FETCH_READ_TIMEOUT_S = 0.3
    server = raw(fetch_servers.silent)
    started = time.monotonic()
    error = refused(f"http://127.0.0.1:{server.port}/", "timeout")
    assert (error.status, error.detail["phase"], error.detail["address"]) == (504, "read", "127.0.0.1")
    assert 0.25 < time.monotonic() - started < 2.0


def test_the_calls_remaining_time_bounds_the_read_timeout(raw, fetch_settings):
    fetch_settings.HTTP_FETCH_READ_TIMEOUT_S = 30.0
    server = raw(fetch_servers.silent)
    started = time.monotonic()
    refused(f"http://127.0.0.1:{server.port}/", "timeout", seconds=0.5)
    assert time.monotonic() - started < 2.0


def test_a_trickling_body_cannot_outlast_the_call(raw, fetch_settings):
    # Each byte comes well within the read timeout; only the call's deadline stops it.
    fetch_settings.HTTP_FETCH_READ_TIMEOUT_S = 1.0
    server = raw(fetch_servers.trickle)
    started = time.monotonic()
    refused(f"http://127.0.0.1:{server.port}/", "timeout", seconds=0.8)
    assert time.monotonic() - started < 2.0


def test_a_read_that_starts_late_in_the_call_waits_only_for_the_time_left(raw, fetch_settings):
    # The socket's timeout was the whole call when the request went out; a read near the deadline must
    # not wait that long again.
    fetch_settings.HTTP_FETCH_READ_TIMEOUT_S = 30.0
    server = raw(fetch_servers.trickle_then_hang)
    started = time.monotonic()
    refused(f"http://127.0.0.1:{server.port}/", "timeout", seconds=1.5)
    assert time.monotonic() - started < 2.2  # not 1.4 s of bytes and then another 1.5 s of waiting


def test_headers_trickling_in_cannot_outlast_the_call(raw, fetch_settings):
    fetch_settings.HTTP_FETCH_READ_TIMEOUT_S = 30.0
    server = raw(fetch_servers.trickle_headers)
    started = time.monotonic()
    refused(f"http://127.0.0.1:{server.port}/", "timeout", seconds=1.0)
    assert time.monotonic() - started < 2.0


def test_a_connection_that_is_never_accepted_times_out_at_the_connect_timeout(fetch_settings):
    fetch_settings.HTTP_FETCH_CONNECT_TIMEOUT_S = 0.3
    listener, filler = fetch_servers.full_backlog()
    try:
        started = time.monotonic()
        error = refused(f"http://127.0.0.1:{listener.getsockname()[1]}/", "timeout")
        assert time.monotonic() - started < 2.0
    finally:
        filler.close()
        listener.close()
    assert error.detail["phase"] == "connect"


def test_a_call_with_no_time_left_does_not_connect(base, pages):
    with pytest.raises(PluginError) as caught:
        PLUGIN.function({"url": f"{base}/text"}, a_call(-1))
    assert caught.value.code == "timeout"
    assert pages.seen == []


# --- failures of the other side ------------------------------------------------------------------------


def test_a_closed_port_is_connect_failed_naming_the_address():
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    error = refused(f"http://127.0.0.1:{port}/", "connect_failed")
    assert (error.detail["host"], error.detail["address"], error.status) == ("127.0.0.1", "127.0.0.1", 502)


@pytest.mark.parametrize("behaviour", [fetch_servers.cut_short, fetch_servers.not_http])
def test_a_broken_answer_is_response_failed(raw, behaviour):
    server = raw(behaviour)
    refused(f"http://127.0.0.1:{server.port}/", "response_failed")


# --- https: the name is checked on the certificate, the checked address is connected to ----------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return fetch_servers.make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(certificates):
    names: list[str] = []
    context = fetch_servers.tls_context(certificates["server"], certificates["server_key"], names)
    server = PageServer("127.0.0.1", tls=context)
    server.server_names = names
    yield server
    server.stop()


@pytest.fixture
def tls(tls_server, fetch_settings, certificates):
    tls_server.seen.clear()
    tls_server.server_names.clear()
    fetch_settings.HTTP_FETCH_CA_BUNDLE = str(certificates["ca"])
    return tls_server


def test_https_sends_the_name_as_sni_and_checks_the_certificate_against_it(tls):
    result = fetch(f"https://localhost:{tls.port}/text")
    assert result["text"] == "héllo wörld"
    assert tls.server_names == ["localhost"]
    assert tls.seen[0]["headers"]["host"] == f"localhost:{tls.port}"


def test_https_to_a_pinned_address_keeps_the_name_for_the_certificate(tls, fetch_settings, fake_dns):
    fetch_settings.HTTP_FETCH_ALLOW_HOSTS = ["fetch.test"]
    fetch_settings.HTTP_FETCH_ALLOW_NETWORKS = ["127.0.0.0/8"]
    asked = fake_dns({"fetch.test": [["127.0.0.1"], ["127.0.0.2"]]})
    assert fetch(f"https://fetch.test:{tls.port}/text")["status"] == 200
    assert asked == ["fetch.test"]
    assert tls.server_names == ["fetch.test"]


def test_a_certificate_for_another_name_is_tls_failed(tls):
    error = refused(f"https://127.0.0.1:{tls.port}/text", "tls_failed")
    assert error.detail["host"] == "127.0.0.1"
    assert tls.seen == []


def test_a_certificate_from_an_unknown_authority_is_tls_failed(tls, fetch_settings):
    fetch_settings.HTTP_FETCH_CA_BUNDLE = ""  # certifi's bundle does not know the test CA
    refused(f"https://localhost:{tls.port}/text", "tls_failed")
    assert tls.seen == []


def test_a_redirect_from_http_to_https_is_checked_and_followed(base, tls):
    result = fetch(f"{base}/redirect?to=https://localhost:{tls.port}/json")
    assert (result["url"], result["text"]) == (f"https://localhost:{tls.port}/json", '{"name": "é"}')
