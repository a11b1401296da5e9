"""The layering rules, read from the source: imports point one way, chat -> aio -> sansio.

* ``rawws/sansio`` imports nothing from ``rawws.aio`` or ``rawws.chat``, and no I/O or clock
  module (asyncio, socket, ssl, time, select, selectors...): it is bytes in, events out.
* ``rawws/aio`` never imports ``rawws.chat``.
* ``rawws/chat`` uses only the public API: ``rawws`` itself, ``rawws.errors``,
  ``rawws.sansio.codes``, ``rawws.redact`` and ``rawws.tls`` (plus its own modules).
* ``rawws/errors.py`` and ``rawws/redact.py`` import nothing from rawws (every layer, the
  sans-I/O core included, may use the one redaction module).
* ``rawws/asgi`` (the uvicorn protocol class) sits on the sans-I/O core: it may import
  ``rawws.sansio``, ``rawws.errors``, ``rawws.redact`` and ``rawws.aio`` helpers, never
  ``rawws.chat``, and nothing outside the standard library (uvicorn is duck-typed, never
  imported).
* ``rawws/wirelog.py`` (the wire log) imports only ``rawws.redact``; chat may use it.
* ``rawws/testing.py`` (the virtual clock) imports nothing from rawws: rawws runs on it unpatched.
* ``rawws/tools`` and ``rawws/testing.py`` sit on top: sansio, aio and chat never import them.
* ``rawws/conformance`` sits on top too, and does not use the connection code it judges
  (``rawws.aio``, ``rawws.sansio.protocol``).
* No module is named after a stdlib module (``http.py`` would shadow ``http`` for scripts run
  from inside the package), except ``rawws.asyncio``, websockets' import path.
* The websockets-compatible import paths (``rawws.asyncio.*``, ``rawws.exceptions``,
  ``rawws.datastructures``, ``rawws.http11``, ``rawws.frames``) are shells: they re-export
  ``rawws.aio``, ``rawws.sansio`` and ``rawws.errors`` and implement nothing (``rawws.http11``
  adds websockets' constructor order, nothing else); no lower layer imports them.
* ``rawws/sync`` (threads over the sans-I/O core) uses ``rawws.sansio``, ``rawws.errors``,
  ``rawws.data``, ``rawws.redact`` and the asyncio layer's I/O-free helpers (argument shapes,
  Basic auth, URI parsing, the closed-connection exception); nothing below it imports it.
* ``rawws/data.py`` (what send() accepts) imports nothing from rawws.
* ``import rawws`` loads only the standard library, and so does ``import rawws.asgi``;
  ``import rawws`` does not load ``rawws.asgi``.

Every import counts: module level, inside functions, ``importlib.import_module("...")`` and
``__import__("...")`` with a literal name.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rawws

ROOT = Path(rawws.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))

#: Modules the sans-I/O core must not touch: event loops, sockets, TLS, clocks, threads.
SANSIO_FORBIDDEN = {"asyncio", "socket", "ssl", "time", "select", "selectors", "threading",
                    "concurrent", "subprocess", "signal"}
#: What rawws/chat may import from rawws (besides rawws.chat itself).
CHAT_ALLOWED = {"rawws", "rawws.errors", "rawws.sansio.codes", "rawws.redact", "rawws.tls",
                "rawws.commands", "rawws.wirelog"}
#: websockets' import paths: re-export shells over the layers (see the module docstring).
SHELLS = {"rawws.exceptions", "rawws.datastructures", "rawws.http11", "rawws.frames"}
#: The one module allowed a standard-library name, and why: websockets' import path.
STDLIB_NAMED = {"rawws.asyncio"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names (``from a import b`` gives
    both ``a`` and ``a.b``: b may be a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (_is_name(node.func, "__import__")
                   or _is_attr(node.func, "importlib", "import_module"))):
            found.add(node.args[0].value)
    return found


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_attr(node: ast.expr, owner: str, attr: str) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == attr and _is_name(node.value, owner)


def rawws_modules_in(imported: set[str]) -> set[str]:
    """The rawws modules among ``imported`` (names that are modules, not attributes)."""
    result = set()
    for name in imported:
        if name != "rawws" and not name.startswith("rawws."):
            continue
        # ``from rawws.sansio.codes import CloseCode`` adds rawws.sansio.codes.CloseCode: keep
        # the longest prefix that is a module or package of rawws.
        parts = name.split(".")
        while len(parts) > 1 and not _exists(".".join(parts)):
            parts.pop()
        result.add(".".join(parts))
    return result


def _exists(dotted: str) -> bool:
    path = ROOT.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def top_level(name: str) -> str:
    return name.partition(".")[0]


def in_layer(layer: str) -> list[Path]:
    return [p for p in MODULES if module_name(p).startswith(f"rawws.{layer}")]


def test_the_layers_exist() -> None:
    assert in_layer("sansio") and in_layer("aio") and in_layer("chat") and in_layer("asgi")
    names = {module_name(p) for p in MODULES}
    assert {"rawws.sansio.protocol", "rawws.aio.connection", "rawws.errors"} <= names


@pytest.mark.parametrize("path", in_layer("sansio"), ids=module_name)
def test_sansio_imports_no_io_and_no_upper_layer(path: Path) -> None:
    imported = imports_of(path)
    assert not {top_level(n) for n in imported} & SANSIO_FORBIDDEN, sorted(imported)
    for name in rawws_modules_in(imported):
        assert name.startswith(("rawws.sansio", "rawws.errors", "rawws.redact")), name


@pytest.mark.parametrize("path", in_layer("aio"), ids=module_name)
def test_aio_never_imports_chat(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert not name.startswith("rawws.chat"), name


@pytest.mark.parametrize("path", in_layer("chat"), ids=module_name)
def test_chat_uses_only_the_public_api(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert name.startswith("rawws.chat") or name in CHAT_ALLOWED, name


@pytest.mark.parametrize("path", in_layer("chat"), ids=module_name)
def test_chat_reaches_no_private_module_through_attributes(path: Path) -> None:
    """``import rawws`` then ``rawws.sansio.protocol.State`` would dodge the import rule."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_name(node.value, "rawws")
                and node.attr not in rawws.__all__ and node.attr not in {"errors", "sansio"}):
            pytest.fail(f"{module_name(path)} uses rawws.{node.attr}, which is not public")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and _is_name(node.value.value, "rawws") and node.value.attr == "sansio"
                and node.attr != "codes"):
            pytest.fail(f"{module_name(path)} uses rawws.sansio.{node.attr}")


@pytest.mark.parametrize("path", in_layer("conformance"), ids=module_name)
def test_the_conformance_suite_is_independent_of_the_stack_it_judges(path: Path) -> None:
    """It builds and reads frames with rawws.tools.wire and the sans-I/O helpers, never with
    the connection code (rawws.aio, rawws.sansio.protocol) it is meant to test."""
    for name in rawws_modules_in(imports_of(path)):
        assert not name.startswith(("rawws.aio", "rawws.chat", "rawws.sansio.protocol")), name


#: What rawws/asgi may import from rawws (besides rawws.asgi itself).
ASGI_ALLOWED = ("rawws.sansio", "rawws.errors", "rawws.redact", "rawws.aio")


@pytest.mark.parametrize("path", in_layer("asgi"), ids=module_name)
def test_asgi_sits_on_the_core_and_the_standard_library(path: Path) -> None:
    imported = imports_of(path)
    for name in rawws_modules_in(imported):
        assert name.startswith(("rawws.asgi", *ASGI_ALLOWED)), name
    outside = {top_level(n) for n in imported} - {"rawws", "__future__"}
    assert not outside - set(sys.stdlib_module_names), sorted(outside)


def test_errors_imports_nothing_from_rawws() -> None:
    assert not rawws_modules_in(imports_of(ROOT / "errors.py"))


def test_wirelog_is_a_leaf_like_redact() -> None:
    """The wire log (events, their lines and JSON) is shared by the tools, the command line
    and the chat inspector: it imports nothing from rawws but the redaction."""
    assert rawws_modules_in(imports_of(ROOT / "wirelog.py")) <= {"rawws.redact"}
    assert not {top_level(n) for n in imports_of(ROOT / "wirelog.py")} & (
        SANSIO_FORBIDDEN - {"time"})


def test_redact_imports_nothing_from_rawws() -> None:
    assert not rawws_modules_in(imports_of(ROOT / "redact.py"))
    assert not {top_level(n) for n in imports_of(ROOT / "redact.py")} & SANSIO_FORBIDDEN


def test_tls_imports_nothing_from_rawws() -> None:
    assert not rawws_modules_in(imports_of(ROOT / "tls.py"))


def test_testing_imports_nothing_from_rawws() -> None:
    assert not rawws_modules_in(imports_of(ROOT / "testing.py"))


@pytest.mark.parametrize("path", in_layer("sansio") + in_layer("aio") + in_layer("chat"),
                         ids=module_name)
def test_no_layer_imports_the_tools(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert not name.startswith(("rawws.tools", "rawws.testing", "rawws.conformance")), name


@pytest.mark.parametrize("path", in_layer("tools"), ids=module_name)
def test_the_tools_stand_on_aio_and_sansio_not_on_chat(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert not name.startswith("rawws.chat"), name


def test_the_checker_sees_relative_and_dynamic_imports(tmp_path: Path) -> None:
    """The rules above are only as good as imports_of(): check it on the real modules."""
    protocol = imports_of(ROOT / "sansio" / "protocol.py")
    assert {"rawws.errors", "rawws.sansio.reader", "rawws.sansio.frames"} <= protocol
    assert "rawws.sansio.server" in protocol  # imported inside a function
    server = imports_of(ROOT / "aio" / "server.py")
    assert {"asyncio", "rawws.sansio.protocol", "rawws.aio.connection"} <= server
    assert "rawws.sansio.deflate" in server  # imported inside a function
    main = imports_of(ROOT / "__main__.py")
    assert "rawws.chat.cli" in main  # importlib.import_module("rawws.chat.cli")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_is_named_after_a_stdlib_module(path: Path) -> None:
    name = path.stem if path.name != "__init__.py" else path.parent.name
    if name in {"__main__", "__init__"} or module_name(path) in STDLIB_NAMED:
        return
    assert name not in sys.stdlib_module_names, f"{path} shadows the stdlib module {name!r}"


SYNC_ALLOWED = ("rawws.sansio", "rawws.errors", "rawws.data", "rawws.redact", "rawws.sync",
                "rawws.aio.arguments", "rawws.aio.auth", "rawws.aio.client", "rawws.aio.server",
                "rawws.aio.connection")


@pytest.mark.parametrize("path", in_layer("sync"), ids=module_name)
def test_sync_uses_the_core_and_the_io_free_helpers(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert name.startswith(SYNC_ALLOWED), name


@pytest.mark.parametrize("path", in_layer("aio") + in_layer("sansio"), ids=module_name)
def test_nothing_below_imports_sync(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert not name.startswith("rawws.sync"), name


def test_data_imports_nothing_from_rawws() -> None:
    assert not rawws_modules_in(imports_of(ROOT / "data.py"))


def is_shell(name: str) -> bool:
    return name in SHELLS or name == "rawws.asyncio" or name.startswith("rawws.asyncio.")


SHELL_MODULES = [p for p in MODULES if is_shell(module_name(p))]


def test_the_shells_exist() -> None:
    names = {module_name(p) for p in SHELL_MODULES}
    assert SHELLS | {"rawws.asyncio", "rawws.asyncio.server", "rawws.asyncio.client"} <= names


@pytest.mark.parametrize("path", SHELL_MODULES, ids=module_name)
def test_shells_reexport_the_layers_and_implement_nothing(path: Path) -> None:
    name = module_name(path)
    for imported in rawws_modules_in(imports_of(path)):
        assert imported.startswith(("rawws.aio", "rawws.sansio", "rawws.errors")), imported
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            pytest.fail(f"{name} defines {node.name}(): implement it in rawws.aio / sansio")
        if isinstance(node, ast.ClassDef):
            # rawws.http11 adapts the constructors to websockets' argument order; that is all.
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            assert name == "rawws.http11" and methods == {"__init__"}, (name, node.name)


@pytest.mark.parametrize("path", [p for p in MODULES if not is_shell(module_name(p))],
                         ids=module_name)
def test_no_layer_imports_the_shells(path: Path) -> None:
    for name in rawws_modules_in(imports_of(path)):
        assert not is_shell(name), f"{module_name(path)} imports the shell {name}"


def test_import_rawws_loads_only_the_standard_library() -> None:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import rawws\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT.parent)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "rawws" in loaded
    outside = sorted(
        name for name in loaded
        if top_level(name) != "rawws" and top_level(name) not in sys.stdlib_module_names
    )
    assert outside == []
    assert not any(name.startswith("rawws.chat") for name in loaded)
    assert not any(name.startswith("rawws.asgi") for name in loaded)


def test_import_rawws_asgi_loads_only_the_standard_library() -> None:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import rawws.asgi\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT.parent)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "rawws.asgi.protocol" in loaded
    outside = sorted(
        name for name in loaded
        if top_level(name) != "rawws" and top_level(name) not in sys.stdlib_module_names
    )
    assert outside == []
    assert not any(name.startswith("rawws.chat") for name in loaded)


# --- the Redis extra (issue 16): redis-py only in the Redis modules, and only with --broker ----

#: The modules that may import redis-py (the ``redis`` extra).
REDIS_MODULES = {"rawws.chat.redis_link", "rawws.chat.redis_store"}
#: Modules that load redis-py when imported: nothing else may import them at module level
#: (rawws.chat.bus needs only rawws.chat.redis_ops, which is standard library only).
LOADS_REDIS = REDIS_MODULES


def module_level_imports(path: Path) -> set[str]:
    """Like imports_of(), but only the imports executed when the module is imported (not
    those inside a function or a class body's methods, nor under ``if TYPE_CHECKING``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try | ast.With):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "orelse", []))
                visit(getattr(node, "finalbody", []))

    visit(tree.body)
    return found


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_only_the_redis_modules_import_redis_py(path: Path) -> None:
    imported = {top_level(n) for n in imports_of(path)}
    if "redis" in imported:
        assert module_name(path) in REDIS_MODULES, f"{module_name(path)} imports redis-py"


@pytest.mark.parametrize("path", [p for p in MODULES if module_name(p) not in LOADS_REDIS],
                         ids=module_name)
def test_the_redis_modules_are_imported_only_when_a_broker_is_given(path: Path) -> None:
    """rawws.chat.server imports them inside the function that opens a broker's store."""
    loaded = rawws_modules_in(module_level_imports(path))
    assert not loaded & LOADS_REDIS, f"{module_name(path)} imports {sorted(loaded & LOADS_REDIS)}"


def test_the_default_server_never_loads_redis_py() -> None:
    code = (
        "import json, sys\n"
        "import rawws.__main__, rawws.chat.cli, rawws.chat.server, rawws.chat.workers\n"
        "from rawws.chat.server import ChatConfig, ChatServer\n"
        "ChatServer(ChatConfig(port=0))\n"
        "before = 'redis' in sys.modules\n"
        "try:\n"
        "    ChatServer(ChatConfig(port=0, broker='redis://127.0.0.1:1/0'))\n"
        "except ValueError:\n"  # redis-py missing: refused with one line
        "    pass\n"
        "print(json.dumps([before, 'redis' in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT.parent)
    assert result.returncode == 0, result.stderr
    # Without --broker nothing loads redis-py; with one, it is loaded (when installed).
    assert json.loads(result.stdout) == [False, _redis_installed()]


def _redis_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("redis") is not None
