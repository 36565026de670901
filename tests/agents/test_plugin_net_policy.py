"""The address policy and host allow-list of outbound plugin requests (agents.plugins.net_policy), and the
settings that configure them."""

from ipaddress import ip_address

import pytest

from agents.plugins import net_policy
from tests.controlplane.test_settings import assert_refused, start


def judge(address: str, networks: tuple[str, ...] = ()) -> str | None:
    found = net_policy.refusal(ip_address(address), net_policy.parse_networks(networks))
    return None if found is None else found.reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.0.1", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("fec0::1", "site_local"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("192.0.2.1", "private"),
        ("198.18.0.1", "private"),
        ("0.1.2.3", "private"),
        ("2001:db8::1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("100.100.100.200", "metadata"),
        ("168.63.129.16", "metadata"),
        ("192.0.0.192", "metadata"),
        ("fd00:ec2::254", "metadata"),
        # IPv6 addresses that embed a refused IPv4 address
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::1", "metadata"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a00:1", "private"),
    ],
)
def test_internal_addresses_are_refused_with_their_reason(address, reason):
    assert judge(address) == reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address):
    assert judge(address) is None


def test_teredo_is_refused_even_embedding_public_addresses():
    # 2001::/32 is not globally routable in its own right (RFC 6890), whatever it embeds.
    assert judge("2001:0:4136:e378:8000:63bf:f7f7:f7f7") == "private"


def test_an_allowed_network_lifts_the_refusal_inside_it_only():
    assert judge("10.1.2.3", ("10.1.2.0/24",)) is None
    assert judge("10.1.3.3", ("10.1.2.0/24",)) == "private"
    assert judge("127.0.0.1", ("127.0.0.1/32",)) is None
    assert judge("127.0.0.2", ("127.0.0.1/32",)) == "loopback"


def test_an_ipv4_mapped_address_is_allowed_as_its_ipv4_address():
    assert judge("::ffff:127.0.0.1", ("127.0.0.1/32",)) is None
    assert judge("::ffff:127.0.0.1", ("::ffff:127.0.0.1/128",)) is None


def test_other_embeddings_need_their_ipv6_address_allowed():
    assert judge("2002:7f00:1::", ("127.0.0.1/32",)) == "loopback"
    assert judge("2002:7f00:1::", ("2002:7f00:1::/48",)) is None


def test_a_metadata_address_is_lifted_only_by_exactly_its_own_network():
    assert judge("169.254.169.254", ("169.254.0.0/16",)) == "metadata"
    assert judge("169.254.169.254", ("0.0.0.0/0",)) == "metadata"
    assert judge("::ffff:169.254.169.254", ("169.254.0.0/16",)) == "metadata"
    assert judge("169.254.169.254", ("169.254.169.254/32",)) is None
    assert judge("169.254.1.1", ("169.254.0.0/16",)) is None


def test_the_refusal_detail_names_address_reason_and_embedded_address():
    found = net_policy.refusal(ip_address("2002:7f00:1::"))
    assert found is not None
    assert found.detail() == {"address": "2002:7f00:1::", "reason": "loopback", "embedded": "127.0.0.1"}


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),
        ("under_score.example", "under_score.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::FFFF:7F00:1", "::ffff:7f00:1"),
    ],
)
def test_hosts_are_compared_in_one_canonical_form(host, canonical):
    assert net_policy.canonical_host(host) == canonical


@pytest.mark.parametrize(
    "host", ["", ".", "a..b", "exa mple.com", "%31.example", "a/b", "-bad.例え", "x" * 254]
)
def test_what_is_not_a_host_is_refused(host):
    with pytest.raises(ValueError, match="host"):
        net_policy.canonical_host(host)


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("example.com", [], False),
        ("example.com", ["example.com"], True),
        ("example.com", ["EXAMPLE.com."], True),
        ("www.example.com", ["example.com"], False),
        ("www.example.com", ["*.example.com"], True),
        ("a.b.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("badexample.com", ["*.example.com"], False),
        ("example.com.evil.net", ["*.example.com"], False),
        ("xn--bcher-kva.example", ["bücher.example"], True),
        ("xn--bcher-kva.example", ["*.example"], True),
        ("127.0.0.1", ["*.0.0.1"], False),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("::1", ["[::1]"], True),
        ("::1", ["0:0:0:0:0:0:0:1"], True),
        ("anything.example", ["*"], True),
        ("10.0.0.1", ["*"], True),
    ],
)
def test_the_allow_list(host, patterns, allowed):
    assert net_policy.host_allowed(host, patterns) is allowed


@pytest.mark.parametrize(
    "pattern",
    ["example.*", "*example.com", "a.*.example.com", "**", "http://example.com", "example.com:443", "*."],
)
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(ValueError):
        net_policy.canonical_pattern(pattern)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HTTP_FETCH_ALLOW_HOSTS", "example.com, *.example.*"),
        ("HTTP_FETCH_ALLOW_NETWORKS", "10.0.0.0/33"),
        ("HTTP_FETCH_MAX_BYTES", "0"),
        ("HTTP_FETCH_CA_BUNDLE", "/no/such/bundle.pem"),
    ],
)
def test_malformed_settings_stop_startup(variable, value):
    assert_refused(start(**{variable: value}), variable)


def test_well_formed_settings_start():
    result = start(
        HTTP_FETCH_ALLOW_HOSTS="*.example.com, bücher.example, [::1], 10.0.0.5",
        HTTP_FETCH_ALLOW_NETWORKS="10.0.0.0/8, ::1",
    )
    assert result.returncode == 0, result.stderr
