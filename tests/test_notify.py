"""Template notifications against the stand-in: checked data, outcomes per recipient, exactly once across a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import pytest

from conftest import ADMIN_PASSWORD, ROOT, make_env
from procs import SandboxThread, clean_env
from server.embedded import free_port
from server.notify import NotifyInvalid
from server.sandbox.state import ALICE, BOB, MALLORY  # the stand-in's demo followers

GRADES = "tplGradesPublished0000000000000000000000001"
VALUES = {"thing1": "你的成绩已发布", "thing2": "高等数学", "time3": "2026年1月20日 10:00"}


async def seed_entry(services) -> None:
    await services.store.set_state("score", {"page": "/wx/page/grades", "title": "查成绩", "keywords": ["成绩"],
                                             "scope": "snsapi_base"}, by="test")


@pytest.mark.gen_test
async def test_templates_come_with_their_keys(services, sandbox):
    templates = {t["template_id"]: t for t in await services.notifications.templates()}
    assert templates[GRADES]["keys"] == ["thing1", "thing2", "time3"]


@pytest.mark.gen_test
async def test_bad_notifications_are_refused_before_anything_is_sent(services, sandbox):
    await seed_entry(services)
    jobs = services.notifications
    with pytest.raises(NotifyInvalid) as caught:
        await jobs.create(GRADES, "nothere", {**VALUES, "thing1": "字" * 21, "extra": "x"}, {"to": []}, by="t")
    assert set(caught.value.problems) == {"entry", "thing1", "extra", "target"}
    with pytest.raises(NotifyInvalid) as caught:
        await jobs.create("tplNoSuch", "score", VALUES, {"all": True}, by="t")
    assert set(caught.value.problems) == {"template"}
    with pytest.raises(NotifyInvalid) as caught:
        await jobs.create(GRADES, "score", {"thing1": "x"}, {"tag": "abc"}, by="t")
    assert set(caught.value.problems) == {"thing2", "time3", "target"}
    assert sandbox.calls["/cgi-bin/message/template/send"] == 0
    assert await services.store.jobs.count_documents({}) == 0


@pytest.mark.gen_test(timeout=30)
async def test_each_recipient_gets_an_outcome_and_the_link_signs_them_in(app_url, services, sandbox):
    await seed_entry(services)
    sandbox.followers[MALLORY].subscribed = False
    jobs = services.notifications
    job_id = await jobs.create(GRADES, "score", VALUES, {"to": [ALICE, BOB, MALLORY, "oNotOfThisAccount000000000"]}, by="t")
    result = await jobs.run(job_id)
    assert (result["status"], result["sent"], result["failed"], result["remaining"]) == ("done", 2, 2, 0)
    sends = {d["openid"]: d async for d in services.store.notify_sends.find({"job": job_id})}
    assert sends[ALICE]["status"] == "sent" and sends[ALICE]["msgid"] > 2**53
    assert (sends[MALLORY]["errcode"], sends["oNotOfThisAccount000000000"]["errcode"]) == (43004, 40003)
    assert (await services.store.get_user(MALLORY))["subscribed"] in (False, 0)  # 43004: not following
    [card] = [e for e in sandbox.inbox(ALICE) if e.get("type") == "template"]
    assert card["url"] == f"{app_url}/wx/go/score" and "你的成绩已发布" in card["content"]
    # §13.4: the delivery events come back to /wx and land on their sends.
    for _ in range(200):
        if (await services.store.notify_outcomes(job_id)).get("delivered") == 2:
            break
        await asyncio.sleep(0.02)
    assert await services.store.notify_outcomes(job_id) == {"sent": 2, "failed": 2, "delivered": 2}


@pytest.mark.gen_test(timeout=60)
async def test_an_interrupted_job_resumes_and_nobody_gets_it_twice(services, sandbox):
    sandbox.population.size = 400
    sandbox.template_events = False
    await services.followers.run()
    await seed_entry(services)
    jobs = services.notifications
    jobs.rate = 2000
    job_id = await jobs.create(GRADES, "score", VALUES, {"all": True}, by="t")
    task = asyncio.get_running_loop().create_task(jobs.run(job_id))
    while ((await services.store.get_job(job_id)) or {}).get("sent", 0) < 100:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await services.store.get_job(job_id))["status"] == "stopped"
    result = await jobs.run(job_id)
    assert (result["status"], result["sent"], result["total"]) == ("done", 403, 403)
    assert len(sandbox.template_deliveries) == 403 and set(sandbox.template_deliveries.values()) == {1}
    # A finished job is never run again.
    again = await jobs.run(job_id)
    assert again["status"] == "done" and len(sandbox.template_deliveries) == 403


@pytest.mark.gen_test(timeout=30)
async def test_busy_and_quota_answers_are_waited_out_and_a_cancel_stops_the_job(services, sandbox):
    await seed_entry(services)
    jobs = services.notifications
    jobs.backoff = (0.01, 0.01)
    sandbox.fail("/cgi-bin/message/template/send", errcode=-1)
    sandbox.fail("/cgi-bin/message/template/send", errcode=45009)
    job_id = await jobs.create(GRADES, "score", VALUES, {"to": [ALICE, BOB]}, by="t")
    assert (await jobs.run(job_id))["sent"] == 2
    cancelled = await jobs.create(GRADES, "score", VALUES, {"to": [ALICE]}, by="t")
    assert await jobs.cancel(cancelled)
    assert (await jobs.run(cancelled))["status"] == "cancelled" and sandbox.calls["/cgi-bin/message/template/send"] == 4


@pytest.fixture
def standin():
    thread = SandboxThread(free_port(), population=2000)
    thread.sandbox.template_events = False  # before it starts: its state belongs to its thread after
    thread.start()
    yield thread
    thread.stop()


def test_a_sigkilled_send_resumes_with_exactly_once_totals(tmp_path, db_name, mongo_uri, standin):
    env = clean_env(**make_env(free_port(), standin.port, db_name), MONGODB_URI=mongo_uri, WX_DATA_DIR=str(tmp_path),
                    WX_NOTIFY_RATE="400", LANG="en_US.UTF-8")  # English output, read below

    def cli(*args, **kw):
        return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, **kw)

    assert cli("followers", "sync").returncode == 0
    assert cli("states", "set", "score", "/wx/page/grades", "--title", "查成绩").returncode == 0
    (tmp_path / "data.json").write_text(json.dumps(VALUES, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "server", "notify", "--template", GRADES, "--entry", "score",
                             "--data", str(tmp_path / "data.json"), "--all"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_id = proc.stdout.readline().split()[1]
    while True:  # kill it about halfway, wherever it is in a chunk
        line = proc.stderr.readline()
        assert line, "the job ended before it could be killed"
        if int(line.split(": ", 1)[1].split(" sent")[0].replace(",", "")) >= 1000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    from pymongo import MongoClient

    with MongoClient(mongo_uri) as client:
        client[db_name].jobs.update_one({"_id": job_id}, {"$set": {"lease_until": 0}})  # its lease ran out
    resumed = cli("notify", "--resume", job_id)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{job_id} done: 2,003 sent, 0 failed" in resumed.stdout
    deliveries = standin.read(lambda sb: dict(sb.template_deliveries))
    assert len(deliveries) == 2003 and set(deliveries.values()) == {1}
    with MongoClient(mongo_uri) as client:
        assert client[db_name].notify_sends.count_documents({"job": job_id, "status": "sent"}) == 2003


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("env_overrides", [{"WX_ADMIN_PASSWORD": ADMIN_PASSWORD}])
async def test_the_admin_previews_sends_and_follows_a_job(admin, services, sandbox):
    await seed_entry(services)
    await admin.login()
    page = await admin.get(f"/admin/notify?template={GRADES}")
    assert page.status == 200 and 'id="v_thing1"' in page.text_body and 'id="v_time3"' in page.text_body
    form = {"template": GRADES, "entry": "score", "target": "to", "openids": f"{ALICE}\n{BOB}",
            **{f"v_{k}": v for k, v in VALUES.items()}}
    bad = await admin.post("/admin/notify", {**form, "v_thing1": "字" * 21, "action": "preview"})
    assert bad.status == 400 and '<p class="field-error" id="thing1-error">最多 20 个字</p>' in bad.text_body
    shown = await admin.post("/admin/notify", {**form, "action": "preview"})
    assert shown.status == 200 and "你的成绩已发布\n课程：高等数学" in shown.text_body.replace("&#10;", "\n")
    assert sandbox.calls["/cgi-bin/message/template/send"] == 0  # a preview sends nothing
    sent = await admin.post("/admin/notify", {**form, "action": "send"})
    assert sent.status == 303
    job_id = sent.headers["Location"].split("job=")[1].split("#")[0]
    while (progress := json.loads((await admin.get(f"/admin/notify/jobs/{job_id}")).text_body))["status"] != "done":
        await asyncio.sleep(0.02)
    assert (progress["sent"], progress["failed"]) == (2, 0)
    for _ in range(200):  # the delivery reports come back to /wx a moment later
        if (progress := json.loads((await admin.get(f"/admin/notify/jobs/{job_id}")).text_body))["delivered"] == 2:
            break
        await asyncio.sleep(0.02)
    assert progress["delivered"] == 2
    listed = (await admin.get("/admin/notify")).text_body
    assert f'id="job-{job_id.split(":")[1]}"' in listed and "已发送 2，失败 0，剩余 0" in listed
    assert (await admin.get("/admin/notify/jobs/notify:000000000000")).status == 404


@pytest.mark.gen_test(timeout=30)
async def test_a_lasting_quota_stops_the_job_after_recording_what_went_out(services, sandbox):
    await seed_entry(services)
    jobs = services.notifications
    jobs.backoff = (0.01,)
    # Both first tries are refused and so is the first retry: one recipient gets 45009 twice and stops the job.
    sandbox.fail("/cgi-bin/message/template/send", errcode=45009, count=3)
    job_id = await jobs.create(GRADES, "score", VALUES, {"to": [ALICE, BOB]}, by="t")
    with pytest.raises(Exception) as caught:
        await jobs.run(job_id)
    assert getattr(caught.value, "errcode", None) == 45009
    job = await services.store.get_job(job_id)
    assert job["status"] == "stopped" and job["sent"] == 1 and job["cursor"] == ""
    assert await services.store.notify_sends.count_documents({"job": job_id}) == 1
    result = await jobs.run(job_id)  # the quota is back
    assert (result["status"], result["sent"]) == ("done", 2)
    assert sorted(sandbox.template_deliveries.values()) == [1, 1]
