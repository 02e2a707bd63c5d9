"""One place for each rule: layer 3 imports what another module decides.

Each test reads layer 3's source (its syntax tree) and fails when a rule
that lives elsewhere is written again: layer 2's numbers, the HTTP grammar
of `_abnf`, the option checks and command-line errors of layer 2, the
statuses without content, the address of a socket's peer, the worker's log.
"""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

import layer2_prefork
import layer3_http
from layer1_sockets import BufferedSocket
from layer2_prefork import _protocol
from layer3_http import _cli, _options
from layer3_http._proxy import describe_peer, socket_address

PACKAGE = Path(layer3_http.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def trees() -> list[tuple[str, ast.Module]]:
    return [(path.name, ast.parse(path.read_text(), str(path))) for path in MODULES]


def top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        names.update(target.id for target in targets if isinstance(target, ast.Name))
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def test_layer_3_defines_none_of_layer_2s_public_names() -> None:
    """A constant or class of layer 2's (`MAX_BYTES`, `CommandLineError`, ...) is imported."""
    exported = set(layer2_prefork.__all__)
    copies = {name: sorted(top_level_names(tree) & exported) for name, tree in trees()}
    assert {name: found for name, found in copies.items() if found} == {}


def test_layer_3_writes_no_number_of_layer_2s_protocol() -> None:
    """The most bytes the master holds and forwards are layer 2's; layer 3 imports them."""
    numbers = {_protocol.MAX_HELD, _protocol.MAX_PAYLOAD - 2, layer2_prefork.MAX_BYTES}
    found = [(name, node.lineno) for name, tree in trees() for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and type(node.value) is int
             and node.value in numbers]
    assert found == []


def test_the_empty_line_limit_is_the_head_parsers() -> None:
    defined = [name for name, tree in trees() for assigned in top_level_names(tree)
               if "EMPTY_LINE" in assigned]
    assert defined == ["_head.py"]


def test_the_http_grammar_is_written_only_in_abnf() -> None:
    """tchar, the field-value controls and quoted-string appear in `_abnf` alone."""
    signs = ("!#$%&'*+", r"\x00-\x08\x0a-\x1f\x7f", r"\x21\x23-\x5b")
    found = [(path.name, sign) for path in MODULES for sign in signs
             if sign in path.read_text() and path.name != "_abnf.py"]
    assert found == []


def test_option_counts_and_command_line_errors_come_from_layer_2() -> None:
    assert _options.check_count is layer2_prefork.check_count
    assert _cli.CommandLineError is layer2_prefork.CommandLineError
    assert isinstance(_cli.parser(), layer2_prefork.CommandLineParser)
    parsers = [(name, node.name) for name, tree in trees() for node in ast.walk(tree)
               if isinstance(node, ast.ClassDef) and any(
                   isinstance(base, ast.Attribute) and base.attr == "ArgumentParser"
                   for base in node.bases)]
    assert parsers == []


def test_statuses_without_content_are_one_set() -> None:
    """Only `_response.has_content` lists 204 and 304 together."""
    found = [(name, node.lineno) for name, tree in trees() for node in ast.walk(tree)
             if isinstance(node, ast.Set | ast.Tuple | ast.List)
             and {204, 304} <= {item.value for item in node.elts
                                if isinstance(item, ast.Constant)}]
    assert [name for name, _ in found] == ["_response.py"]


def test_only_proxy_reads_addresses_off_a_socket() -> None:
    readers = sorted({name for name, tree in trees() for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr in (
                          "remote_ip4", "remote_ip6", "local_ip4", "local_ip6")})
    assert readers == ["_proxy.py"]


def test_a_worker_logs_one_way() -> None:
    """No print to stderr, no stderr writes and no logging calls but `_errors.log`.

    The command line (`_cli`, in the master before the fork) prints its
    usage errors and logs through `logging`; the access log is its own channel;
    the development reloader (`_devreload`) runs in a process of its own and
    speaks to the developer's terminal, not to a worker's log.
    """
    found = []
    for name, tree in trees():
        if name in ("_cli.py", "_accesslog.py", "_devreload.py"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "print" and name != "_multipart.py":
                found.append((name, node.lineno, "print"))
            if isinstance(node, ast.Attribute) and node.attr == "write" and isinstance(
                    node.value, ast.Attribute) and node.value.attr == "stderr" \
                    and name != "_errors.py":
                found.append((name, node.lineno, "stderr.write"))
            if (isinstance(node, ast.Import | ast.ImportFrom) and any(
                    alias.name.startswith("logging") for alias in node.names)) or (
                    isinstance(node, ast.ImportFrom) and (node.module or "") == "logging"):
                found.append((name, node.lineno, "logging"))
    assert found == []


@pytest.mark.parametrize(("family", "host", "address"), [
    (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
    (socket.AF_INET6, "::1", "::1"),
    (socket.AF_INET6, "::ffff:127.0.0.1", "127.0.0.1"),  # a dual-stack listener's IPv4 peer
])
def test_the_peer_address_is_told_one_way(family: socket.AddressFamily, host: str,
                                          address: str) -> None:
    try:
        listener = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # pragma: no cover - a machine without IPv6
        pytest.skip("no IPv6")
    with listener:
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::" if family == socket.AF_INET6 else host, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        target = "127.0.0.1" if address == "127.0.0.1" and family == socket.AF_INET6 else host
        with socket.create_connection((target, port), timeout=5) as client:
            accepted, _ = listener.accept()
            with BufferedSocket(accepted) as sock:
                assert socket_address(sock) == address
                host_text = f"[{address}]" if ":" in address else address
                assert describe_peer(sock) == f"{host_text}:{client.getsockname()[1]}"


def test_a_unix_peer_has_no_address() -> None:
    left, right = socket.socketpair()
    with BufferedSocket(left) as sock, right:
        assert socket_address(sock) is None and describe_peer(sock) == "unix"


def test_the_building_blocks_have_their_own_namespace() -> None:
    """`import layer3_http` shows the application API; the I/O-free parts are `protocol`'s."""
    from layer3_http import protocol

    shared = set(protocol.__all__) & set(layer3_http.__all__)
    assert shared == {"ClientError"}  # raised by the parsers, caught by applications
    for name in protocol.__all__:
        assert getattr(protocol, name).__module__.startswith("layer3_http._")
    assert not {"HeadParser", "ChunkedDecoder", "MultipartParser", "ResponseWriter",
                "body_decoder"} & set(layer3_http.__all__)
