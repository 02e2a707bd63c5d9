"""Listeners and options are validated data: errors name the option, before any fork."""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import pkgutil
import socket
import typing
from pathlib import Path

import pytest
from support import free_port

import layer2_prefork
from layer2_prefork import TCP, Event, Interval, Local, Main, PoolOptions, StartupError, listen, run


def ignore(conn: object) -> None:
    return None


# --- listeners ---------------------------------------------------------------

def test_tcp_takes_host_and_port_by_position_or_keyword() -> None:
    assert TCP("127.0.0.1", 80) == TCP(host="127.0.0.1", port=80)
    assert TCP(port=0).host == "::"
    assert TCP("::1", 65535).port == 65535


@pytest.mark.parametrize(("arguments", "message"), [
    ({}, "port is required"),
    ({"port": -1}, "port"),
    ({"port": 65536}, "65535"),
    ({"port": True}, "port"),
    ({"port": "80"}, "port"),
    ({"host": "", "port": 80}, "host"),
    ({"host": None, "port": 80}, "host"),
])
def test_tcp_rejects_bad_values(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TCP(**arguments)  # type: ignore[arg-type]


def test_listeners_are_frozen_and_slotted() -> None:
    listener = TCP("127.0.0.1", 80)
    with pytest.raises(AttributeError):
        listener.port = 81  # type: ignore[misc]
    assert not hasattr(listener, "__dict__")


def test_local_accepts_paths_and_rejects_bad_ones(tmp_path: Path) -> None:
    assert Local(tmp_path / "s").path == str(tmp_path / "s")
    with pytest.raises(ValueError, match="path"):
        Local("")
    with pytest.raises(ValueError, match="longer than 107"):
        Local("/tmp/" + "x" * 200)
    with pytest.raises(ValueError, match="path"):
        Local(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Interval("", 1), "name"),
    (lambda: Interval("tick", 0), "delay must be > 0"),
    (lambda: Interval("tick", -1), "delay"),
    (lambda: Interval("tick", math.nan), "delay"),
    (lambda: Interval("tick", "1"), "delay"),
    (lambda: Interval("tick", 1, strict=1), "strict"),
    (lambda: Main(""), "name"),
    (lambda: Main(None), "name"),
])
def test_timer_listeners_reject_bad_values(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_event_holds_one_name() -> None:
    assert Event(interval="tick").main is None
    assert Event(main="batch").interval is None


# --- options -------------------------------------------------------------------

@pytest.mark.parametrize(("pre_fork", "min_fork", "max_fork"), [
    (0, 2, 16), (1, 2, 16), (2, 2, 16), (5, 5, 16), (20, 20, 20),
])
def test_fork_defaults(pre_fork: int, min_fork: int, max_fork: int) -> None:
    options = PoolOptions(pre_fork=pre_fork)
    assert (options.min_fork, options.max_fork) == (min_fork, max_fork)


def test_explicit_min_fork_sets_the_max_fork_default() -> None:
    assert PoolOptions(min_fork=30).max_fork == 30
    assert PoolOptions(min_fork=3).max_fork == 16


@pytest.mark.parametrize(("options", "named"), [
    ({"pre_fork": -1}, "pre_fork"),
    ({"pre_fork": 1.5}, "pre_fork"),
    ({"pre_fork": True}, "pre_fork"),
    ({"min_fork": 0}, "min_fork"),
    ({"pre_fork": 3, "min_fork": 2}, "min_fork"),
    ({"min_fork": 4, "max_fork": 3}, "max_fork"),
    ({"max_fork": 0}, "max_fork"),
    ({"fork_delay": -0.1}, "fork_delay"),
    ({"fork_delay": math.inf}, "fork_delay"),
    ({"fork_error_delay": math.nan}, "fork_error_delay"),
    ({"exit_delay": -1}, "exit_delay"),
    ({"idle_timeout": "1"}, "idle_timeout"),
    ({"memory_limit": 0}, "memory_limit"),
    ({"memory_limit": 1.5}, "memory_limit"),
])
def test_bad_options_name_the_option(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PoolOptions(**options)  # type: ignore[arg-type]


def test_never_is_allowed_for_exit_delay_and_idle_timeout() -> None:
    options = PoolOptions(exit_delay=math.inf, idle_timeout=math.inf)
    assert options.exit_delay == options.idle_timeout == math.inf


# --- listen() ------------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "named"), [
    ({"pre_fork": -1}, "pre_fork"),
    ({"max_fork": 0}, "max_fork"),
    ({"connect": 42}, "connect"),
    ({"prepare": "no"}, "prepare"),
    ({"finish": 1}, "finish"),
    ({"idle_timeout": -5}, "idle_timeout"),
])
def test_listen_validates_before_binding(arguments: dict[str, object], named: str) -> None:
    port = free_port()
    call: dict[str, object] = {"connect": ignore, **arguments}
    with pytest.raises(ValueError, match=named):
        listen(TCP("127.0.0.1", port), **call)  # type: ignore[arg-type]
    with socket.socket() as again:  # nothing was left bound
        again.bind(("127.0.0.1", port))


def test_listen_needs_listeners() -> None:
    with pytest.raises(ValueError, match="at least one listener"):
        listen(connect=ignore)
    with pytest.raises(ValueError, match="not a listener"):
        listen(("127.0.0.1", 80), connect=ignore)  # type: ignore[arg-type]


def test_listen_binds_at_once_and_reports_the_port() -> None:
    pool = listen(TCP("127.0.0.1", 0), Interval("tick", 1), connect=ignore)
    try:
        assert pool.addresses == (("127.0.0.1", pool.port),)
        assert pool.options.min_fork == 2
        # Bound and listening before run(): a client's connect succeeds (backlog).
        with socket.create_connection(("127.0.0.1", pool.port), timeout=5):
            pass
    finally:
        pool.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", pool.port), timeout=5)


def test_the_default_host_takes_ipv6_and_ipv4_clients() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    pool = listen(TCP(port=0), connect=ignore)
    try:
        assert pool.addresses == (("::", pool.port),)
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, pool.port), timeout=5):
                pass
    finally:
        pool.close()


def test_pools_are_numbered_in_order() -> None:
    first = listen(TCP("127.0.0.1", 0), connect=ignore)
    second = listen(Main("batch"), connect=ignore)
    try:
        assert (first.index, second.index) == (0, 1)
        assert second.addresses == ()
        with pytest.raises(ValueError, match="no TCP listener"):
            _ = second.port
    finally:
        first.close()
        second.close()


def test_a_port_in_use_fails_in_listen_and_releases_the_others() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = free_port()
        with pytest.raises(OSError, match="in use"):
            listen(TCP("127.0.0.1", port), TCP("127.0.0.1", taken.getsockname()[1]),
                   connect=ignore)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_local_listener_binds_and_its_file_goes_with_close(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    pool = listen(Local(path), connect=ignore)
    assert pool.addresses == (str(path),)
    assert path.is_socket()
    pool.close()
    assert not path.exists()


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: nobody answers
    pool = listen(Local(path), connect=ignore)
    pool.close()
    assert not path.exists()


def test_a_live_socket_or_another_file_is_not_replaced(tmp_path: Path) -> None:
    live = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(live))
        server.listen()
        with pytest.raises(OSError, match="another server"):
            listen(Local(live), connect=ignore)
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(FileExistsError):
        listen(Local(regular), connect=ignore)
    assert regular.read_text() == "keep me"


def test_a_socket_file_replaced_by_someone_else_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    pool = listen(Local(path), connect=ignore)
    os.unlink(path)
    with socket.socket(socket.AF_UNIX) as newer:
        newer.bind(str(path))
        pool.close()
        assert path.is_socket()


def test_run_without_listen_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="no listener"):
        run()


# --- type hints ----------------------------------------------------------------


def layer2_dataclasses() -> list[type]:
    """Every public dataclass that a module of layer 2 defines (the package's and its
    sub-packages' modules, `__main__` apart: it runs the command line)."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(layer2_prefork.__path__, "layer2_prefork."):
        if info.name.endswith(".__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (isinstance(value, type) and dataclasses.is_dataclass(value)
                    and not name.startswith("_") and value.__module__ == info.name):
                found[f"{info.name}.{name}"] = value
    return [found[name] for name in sorted(found)]


@pytest.mark.parametrize("cls", layer2_dataclasses(), ids=lambda cls: cls.__qualname__)
def test_the_type_hints_of_every_dataclass_resolve(cls: type) -> None:
    # A name imported only for type checking (an import circle) would raise NameError here.
    hints = typing.get_type_hints(cls)
    assert set(hints) >= {field.name for field in dataclasses.fields(cls)}


def test_the_dataclasses_walked_include_the_public_ones_and_the_pool_spec() -> None:
    names = {cls.__name__ for cls in layer2_dataclasses()}
    public = {name for name in layer2_prefork.__all__
              if dataclasses.is_dataclass(getattr(layer2_prefork, name))}
    assert public >= {"TCP", "PoolOptions", "DispatchFilter", "ServerOptions"}
    assert names >= public | {"PoolSpec", "Handlers"}
