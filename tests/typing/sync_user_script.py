"""A user's script on the blocking client, type-checked by tests/test_typing.py (never run).

The comment ``# -> T`` above each ``reveal_type`` says what ``mypy --strict`` must reveal.
"""

from __future__ import annotations

from pathlib import Path
from typing import reveal_type

from aiolightning import JobRequest, Lightning, Outcome, Progress, Studio, StudioState


def on_progress(p: Progress) -> None:
    print(f"{p.done}/{p.total}")


def tour(url: str, workdir: Path) -> None:
    with Lightning(url, user_id="u", api_key="k", teamspace="emu-teamspace") as client:
        me = client.api.auth.whoami()
        # -> aiolightning.models._structs.V1WhoamiResponse
        reveal_type(me)
        studio = client.studios.create("s", exist_ok=True)
        # -> aiolightning.resources.studios._models.Studio
        reveal_type(studio)
        state = client.studios.start(studio, "cpu-4")
        # -> aiolightning.resources.studios._models.StudioState
        reveal_type(state)
        result = client.studios.run(studio, "echo hi")
        # -> str
        reveal_type(result.output)
        for listed in client.studios.list():
            # -> aiolightning.resources.studios._models.Studio
            reveal_type(listed)
        outs = client.studios.stop_many(["a", "b"], on_progress=on_progress)
        # -> list[aiolightning.fanout.Outcome[aiolightning.resources.studios._models.Studio | str, aiolightning.resources.studios._models.StudioState]]
        reveal_type(outs)
        first: Outcome[Studio | str, StudioState] = outs[0]
        print(first.ok)
        job = client.jobs.submit("train", "python train.py", machine="cpu-4")
        # -> aiolightning.resources.jobs._models.Job
        reveal_type(job)
        jobs = client.jobs.submit_many([JobRequest("a", "echo a")])
        # -> aiolightning.resources.jobs._models.Job | None
        reveal_type(jobs[0].value)
        for change in client.jobs.watch([job]):
            # -> aiolightning.resources.jobs._models.JobChange
            reveal_type(change)
        up = client.storage.upload(workdir / "a.bin", "data/a.bin")
        # -> int
        reveal_type(up.size)
        for info in client.storage.list("data"):
            # -> aiolightning.resources.storage._listing.FileInfo
            reveal_type(info)
        pager = client.api.cloud_space.list_cloud_spaces_iter("project")
        # -> aiolightning._sync._wrap.Pager[aiolightning.models._structs.V1CloudSpace]
        reveal_type(pager)
        for cs in pager:
            # -> aiolightning.models._structs.V1CloudSpace
            reveal_type(cs)
        teamspaces = client.teamspaces.list()
        # -> list[aiolightning.resources.teamspaces.Teamspace]
        reveal_type(teamspaces)
        raw = client.api.auth.with_raw_response.whoami()
        # -> aiolightning._raw.RawResponse[aiolightning.models._structs.V1WhoamiResponse]
        reveal_type(raw)
        # -> str | None
        reveal_type(raw.request_id)
