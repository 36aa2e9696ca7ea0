"""The layout a newcomer reads: no import cycle, services built in one place, shared pieces defined once, no dead code."""

from __future__ import annotations

import ast
import os
import re

from conftest import ROOT

CODE = ("server", "handlers", "wxconfig.py")


def python_files(*roots: str):
    for root in roots:
        path = os.path.join(ROOT, root)
        if os.path.isfile(path):
            yield path
            continue
        for folder, _, names in os.walk(path):
            yield from (os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))


def module_name(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel.removesuffix(".__init__")


def imports_of(path: str, known: set[str]) -> set[str]:
    """Project modules `path` imports anywhere (inside functions too: a lazy import is still a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_no_import_cycles():
    paths = {module_name(p): p for p in python_files(*CODE)}
    graph = {name: imports_of(path, set(paths)) - {name} for name, path in paths.items()}
    # A package's __init__ joining its own modules is not a cycle a reader trips over.
    for name in graph:
        graph[name] = {dep for dep in graph[name] if not name.startswith(dep + ".")}
    cycles = []

    def visit(node, stack, done):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        done.add(node)
        for dep in sorted(graph[node]):
            visit(dep, stack + [node], done)

    done: set[str] = set()
    for name in sorted(graph):
        visit(name, [], done)
    assert cycles == []


# Services a process shares; building one anywhere else gives a second cache, lease or throttle.
SERVICES = {"AdminAuth", "MenuService", "TokenService", "TicketService", "WeChatClient", "EntryCodes", "StateEntries",
            "ReplyTexts", "ScanLoginService", "AuthService", "MessageService", "StateMap", "UserWrites",
            "FollowerSync", "Notifications", "Funnel", "AdminAccounts"}


def test_services_are_built_only_in_runtime():
    built = []
    for path in python_files("server", "handlers"):
        if path.endswith(os.path.join("server", "runtime.py")):
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SERVICES:
                built.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.func.id}")
    assert built == []


def test_the_key_pattern_is_written_once():
    pattern = re.compile(r"a-zA-Z0-9\]\{1,64\}")
    holders = [os.path.relpath(p, ROOT) for p in python_files(*CODE, "tests", "bench")
               if pattern.search(open(p, encoding="utf-8").read())]
    assert holders == [os.path.join("server", "statekey.py")]


def test_demo_and_credentials_are_defined_once():
    definitions: dict[str, list[str]] = {}
    for path in python_files(*CODE, "tests", "bench"):
        for node in ast.parse(open(path, encoding="utf-8").read()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Dict, ast.List)):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in {
                            "DEMO_STATES", "DEMO_MENU", "APPID", "SECRET", "TOKEN", "AES_KEY", "ORIGINAL_ID",
                            "COOKIE_SECRET", "WECHAT_UA", "DESKTOP_UA"}:
                        definitions.setdefault(target.id, []).append(os.path.relpath(path, ROOT))
    assert {name: places for name, places in definitions.items() if len(places) != 1} == {}
    assert set(definitions["DEMO_MENU"]) == {os.path.join("server", "sandbox", "demo.py")}
    assert set(definitions["APPID"]) == {os.path.join("server", "sandbox", "testkit.py")}


# Names a framework calls (Tornado's handler hooks), never the project itself.
FRAMEWORK_HOOKS = {"get", "post", "put", "delete", "head", "options", "prepare", "on_finish", "initialize",
                   "set_default_headers", "write_error", "get_current_user", "get_template_namespace",
                   "check_xsrf_cookie", "get_user_locale", "get_browser_locale", "compute_etag", "on_connection_close",
                   "log_exception", "validate_absolute_path", "get_content_type", "parse_url_path"}


def test_every_function_is_used():
    """A function nothing calls is a feature half-built or a leftover: wire it or remove it."""
    texts = []
    for root in ("server", "handlers", "templates", "bench", "static", "wxconfig.py"):
        path = os.path.join(ROOT, root)
        walk = [(os.path.dirname(path), [os.path.basename(path)])] if os.path.isfile(path) else \
            [(folder, names) for folder, _, names in os.walk(path)]
        for folder, names in walk:
            texts += [open(os.path.join(folder, n), encoding="utf-8", errors="replace").read()
                      for n in names if n.endswith((".py", ".html", ".js"))]
    corpus = "\n".join(texts)
    unused = []
    for path in python_files(*CODE):
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("__") \
                    and node.name not in FRAMEWORK_HOOKS:
                if len(re.findall(rf"\b{re.escape(node.name)}\b", corpus)) < 2:
                    unused.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name}")
    assert unused == []
