"""The command line and real server processes: same data, retries across processes, orderly stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import wxmsg
from conftest import ROOT
from procs import ENGLISH, ServerProcess, clean_env, follower_opener, server_env, state_of
from server.embedded import free_port


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def post_wx(url: str, body: str, query: str | None = None) -> bytes:
    request = urllib.request.Request(f"{url}/wx?{query or wxmsg.query()}", data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


@pytest.fixture
def data_env(tmp_path, db_name, mongo_uri):
    """Settings for data commands: the shared test MongoDB (or MONGODB_URI), a fresh database; English output."""
    return clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name, WX_DATA_DIR=str(tmp_path), **ENGLISH)


def test_states_set_list_delete(data_env):
    added = cli(data_env, "states", "set", "score", "/wx/page/bind", "--title", "查成绩", "--keywords", "成绩, score")
    assert added.returncode == 0, added.stderr
    assert "added score" in added.stdout
    listed = cli(data_env, "states", "list")
    assert listed.stdout.strip() == "score\t/wx/page/bind\tsnsapi_base\t查成绩\t成绩,score"
    assert cli(data_env, "states", "delete", "score").returncode == 0
    assert cli(data_env, "states", "list").stdout.strip() == ""
    gone = cli(data_env, "states", "delete", "score")
    assert gone.returncode == 1 and "no entry" in gone.stderr


@pytest.mark.parametrize("args,field", [
    (["bad-key", "/wx/page/me"], "key"),
    (["k" * 65, "/wx/page/me"], "key"),
    (["evil", "//evil.example"], "page"),
    (["evil", "https://evil.example/"], "page"),
    (["evil", "javascript:alert(1)"], "page"),
    (["ok", "/wx/page/me", "--scope", "snsapi_login"], "scope"),
])
def test_bad_entry_is_refused_with_exit_code_2(data_env, args, field):
    result = cli(data_env, "states", "set", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {field}:"), result.stderr
    assert cli(data_env, "states", "list").stdout.strip() == ""


def test_duplicate_keyword_across_entries_is_refused(data_env):
    assert cli(data_env, "states", "set", "a", "/wx/page/me", "--keywords", "成绩").returncode == 0
    result = cli(data_env, "states", "set", "b", "/wx/page/bind", "--keywords", "x,成绩")
    # The admin page's check and words (one state-map service): the keyword and the entry that has it.
    assert result.returncode == 2
    assert result.stderr.startswith("error: keywords: ") and "already used by another entry" in result.stderr
    assert "“成绩” (a)" in result.stderr
    assert cli(data_env, "states", "list").stdout.strip().count("\n") == 0  # nothing was written


def test_allowed_host_page_is_accepted(data_env):
    env = dict(data_env, WX_ALLOWED_HOSTS="shop.example")
    assert cli(env, "states", "set", "shop", "https://shop.example/item/1").returncode == 0


def test_cli_reaches_the_running_servers_embedded_data(tmp_path, db_name):
    """No MONGODB_URI: the server starts the embedded store; the CLI finds and uses the same one."""
    port = free_port()
    env = server_env(port, free_port(), db_name, None, WX_DATA_DIR=str(tmp_path / "data"))
    server = ServerProcess(env, port=port).start()
    try:
        assert (tmp_path / "data" / "embedded.port").exists()
        result = cli(env, "states", "set", "grades", "/wx/page/me", "--keywords", "grades")
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 5
        while b"/wx/go/grades" not in post_wx(server.url, wxmsg.text("grades", msg_id=int(time.time() * 1000))):
            assert time.monotonic() < deadline, "the change did not reach replies within 5 s"
            time.sleep(0.2)
    finally:
        assert server.stop() == 0
    assert not (tmp_path / "data" / "embedded.port").exists()  # the embedded store was stopped
    # With the server gone, the CLI starts the store on the same files and sees the entry.
    assert "grades\t/wx/page/me" in cli(env, "states", "list").stdout


def test_retry_reaching_a_second_process_gets_the_same_reply(mongo_uri, db_name):
    wechat = free_port()
    assert cli(clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name), "states", "set", "score", "/wx/page/bind",
               "--keywords", "成绩").returncode == 0
    a = ServerProcess(server_env(free_port(), wechat, db_name, mongo_uri)).start()
    b = ServerProcess(server_env(free_port(), wechat, db_name, mongo_uri)).start()
    try:
        body = wxmsg.text("成绩", msg_id=987654321, create_time=int(time.time()))
        first = post_wx(a.url, body)
        retry = post_wx(b.url, body)
        assert retry == first and b"/wx/go/score" in first
        query, encrypted = wxmsg.encrypted(wxmsg.text("成绩", msg_id=987654322))
        assert wxmsg.open_reply(post_wx(a.url, encrypted, query).decode()) == wxmsg.open_reply(post_wx(b.url, encrypted, query).decode())
    finally:
        assert a.stop() == 0 and b.stop() == 0


def test_sigterm_finishes_request_in_flight_then_exits_0(mongo_uri, db_name, tmp_path):
    """A slow WeChat keeps a callback in flight; SIGTERM lets it finish, refuses new work, exits 0."""
    import socket
    import threading

    wechat_port = free_port()
    # A socket that accepts and never answers: the code exchange hangs until the client's timeout.
    hang = socket.socket()
    hang.settimeout(15)
    hang.bind(("127.0.0.1", wechat_port))
    hang.listen(16)
    assert cli(clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name), "states", "set", "s", "/wx/page/bind").returncode == 0
    server = ServerProcess(server_env(free_port(), wechat_port, db_name, mongo_uri)).start()
    try:
        result = {}

        def follower():
            opener = follower_opener()
            state = state_of(opener.open(f"{server.url}/wx/go/s"))
            try:
                opener.open(f"{server.url}/wx/page/wxauthor?code=c&state={state}", timeout=20)
            except urllib.error.HTTPError as exc:
                result["status"] = exc.code
                result["body"] = exc.read().decode()

        thread = threading.Thread(target=follower)
        thread.start()
        exchange, _ = hang.accept()  # the callback is now waiting on the hanging "WeChat"
        server.popen.send_signal(signal.SIGTERM)
        thread.join(20)
        exchange.close()
        assert result.get("status") == 504, result  # it was answered, with a page, not cut off
        assert server.popen.wait(20) == 0
    finally:
        server.stop()
        hang.close()


def test_users_list_and_show(data_env, mongo_uri, db_name):
    from pymongo import MongoClient

    client = MongoClient(mongo_uri)
    try:
        client[db_name].users.insert_many([
            {"openid": "oAlice", "nickname": "Alice 小明", "scope": "snsapi_userinfo", "subscribed": True,
             "web_token": {"sealed": "SEALED"}, "login_count": 2},
            {"openid": "oBob", "nickname": "Bob", "scope": "snsapi_base"},
        ])
    finally:
        client.close()
    listed = cli(data_env, "users", "list", "--search", "小明")
    assert listed.returncode == 0 and "oAlice\tAlice 小明\tsnsapi_userinfo\tsubscribed" in listed.stdout
    assert "oBob" not in listed.stdout
    shown = cli(data_env, "users", "show", "oAlice")
    assert shown.returncode == 0 and '"login_count": 2' in shown.stdout
    assert "SEALED" not in shown.stdout  # tokens never reach a terminal
    missing = cli(data_env, "users", "show", "oNobody")
    assert missing.returncode == 1 and "no user" in missing.stderr


def test_audit_lists_changes_made_on_the_command_line(data_env):
    assert cli(data_env, "states", "set", "score", "/wx/page/bind").returncode == 0
    assert cli(data_env, "states", "delete", "score").returncode == 0
    lines = cli(data_env, "audit").stdout.strip().splitlines()
    assert [line.split("\t")[1:] for line in lines] == [["cli", "state.delete", "score"], ["cli", "state.set", "score"]]


def test_replies_set_and_show(data_env):
    assert cli(data_env, "replies", "set", "welcome", "欢迎！{links}").returncode == 0
    assert '"welcome": "欢迎！{links}"' in cli(data_env, "replies", "show").stdout
    empty = cli(data_env, "replies", "set", "default_reply", "  ")
    assert empty.returncode == 2 and "1-600 characters" in empty.stderr
    assert "default_reply" not in cli(data_env, "replies", "show").stdout


@pytest.mark.parametrize("lang", [None, "C", "C.UTF-8", "POSIX"])
def test_commands_speak_chinese_by_default(tmp_path, db_name, mongo_uri, lang):
    """No language named (or C/POSIX): the commands' results, errors and help are Chinese."""
    env = clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name, WX_DATA_DIR=str(tmp_path), **({"LANG": lang} if lang else {}))
    assert "LANG" not in env or env["LANG"] == lang
    added = cli(env, "states", "set", "score", "/wx/page/bind")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "已添加 score -> /wx/page/bind"
    gone = cli(env, "states", "delete", "nothere")
    assert gone.returncode == 1 and gone.stderr.strip() == "错误：没有条目 'nothere'"
    bad = cli(env, "states", "set", "bad-key", "/wx/page/me")
    assert bad.returncode == 2 and bad.stderr.startswith("错误：key：")  # the field's name is the form's
    assert "列出状态表条目" in cli(env, "states", "--help").stdout
    # argparse's own words too: usage and its errors.
    usage = cli(env, "states", "set")
    assert usage.returncode == 2 and usage.stderr.startswith("用法: python -m server states set")
    assert "python -m server states set：错误：缺少以下必需参数：key, page" in usage.stderr


@pytest.mark.parametrize("variable", ["LANG", "LC_MESSAGES", "LC_ALL"])
def test_commands_speak_english_when_the_terminal_does(tmp_path, db_name, mongo_uri, variable):
    env = clean_env(MONGODB_URI=mongo_uri, WX_DB_NAME=db_name, WX_DATA_DIR=str(tmp_path), **{variable: "en_US.UTF-8"})
    added = cli(env, "states", "set", "score", "/wx/page/bind")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added score -> /wx/page/bind"
    gone = cli(env, "states", "delete", "nothere")
    assert gone.returncode == 1 and gone.stderr.strip() == "error: no entry 'nothere'"
    assert "list map entries" in cli(env, "states", "--help").stdout
    usage = cli(env, "states", "set")
    assert usage.returncode == 2 and usage.stderr.startswith("usage: python -m server states set")
    assert "python -m server states set: error: the following arguments are required: key, page" in usage.stderr
    # LC_ALL decides over LANG, as in gettext.
    chinese = cli(dict(env, LANG="en_US.UTF-8", LC_ALL="zh_CN.UTF-8"), "states", "delete", "nothere")
    assert chinese.stderr.strip() == "错误：没有条目 'nothere'"
