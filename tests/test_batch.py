"""Output naming, overall status and the runner of many per-file jobs, in process."""

from __future__ import annotations

import os

import pytest

from vqformat import EncodeOptions
from vqformat.cli import jobs
from vqformat.cli.batch import Reporter, UsageError, overall_status, plan_targets, run_jobs
from vqformat.cli.jobs import EncodeJob, ExitStatus, Result
from vqformat.format import atomic


def test_one_input_goes_beside_it_or_where_o_says(tmp_path):
    assert plan_targets(["a/photo.jpg"], None, ".vqi") == [os.path.join("a", "photo.vqi")]
    assert plan_targets(["photo.jpg"], "x.vqi", ".vqi") == ["x.vqi"]
    assert plan_targets(["photo.jpg"], f"{tmp_path}", ".vqi") == [str(tmp_path / "photo.vqi")]
    assert plan_targets(["-"], None, ".vqi") == ["-"]
    assert plan_targets(["-"], "out/", ".vqi") == [os.path.join("out", "stdin.vqi")]


def test_several_inputs_need_a_folder_and_distinct_outputs(tmp_path):
    sources = ["a/one.png", "b/two.jpg"]
    assert plan_targets(sources, None, ".vqi") == [
        os.path.join("a", "one.vqi"),
        os.path.join("b", "two.vqi"),
    ]
    assert plan_targets(sources, "out/", ".png") == ["out/one.png", "out/two.png"]
    with pytest.raises(UsageError, match="must name a folder"):
        plan_targets(sources, "out.vqi", ".vqi")
    with pytest.raises(UsageError, match="standard output"):
        plan_targets(sources, "-", ".vqi")
    with pytest.raises(UsageError, match="both be written"):
        plan_targets(["a/one.png", "b/one.jpg"], "out/", ".vqi")
    with pytest.raises(UsageError, match="standard input"):
        plan_targets(["-", "a/one.png"], None, ".vqi")
    with pytest.raises(UsageError, match="replace the input"):
        plan_targets(["photo.vqi"], None, ".vqi")


def result(status: ExitStatus) -> Result:
    return Result("in", "out", status, "")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], ExitStatus.OK),
        ([ExitStatus.OK, ExitStatus.OK], ExitStatus.OK),
        ([ExitStatus.OK, ExitStatus.SKIPPED], ExitStatus.SKIPPED),
        ([ExitStatus.SKIPPED, ExitStatus.CORRUPT, ExitStatus.INPUT], ExitStatus.CORRUPT),
    ],
)
def test_overall_status_is_the_first_failure_then_skipped(statuses, expected):
    assert overall_status(map(result, statuses)) == expected


def test_a_broken_executor_reports_the_jobs_it_did_not_finish(capsys):
    jobs = [
        EncodeJob(source=f"{n}.png", target=f"{n}.vqi", options=EncodeOptions(colors=4))
        for n in range(3)
    ]

    def breaks_after_one(work, items):
        yield Result(items[0].source, items[0].target, ExitStatus.OK, "done", 10, 5)
        raise RuntimeError("worker killed")

    reporter = Reporter(len(jobs), "encoded", quiet=False, debug=False)
    results = run_jobs(None, jobs, breaks_after_one, reporter)
    assert [r.status for r in results] == [ExitStatus.OK, ExitStatus.INTERNAL, ExitStatus.INTERNAL]
    lines = capsys.readouterr().err.splitlines()
    assert lines[1:] == [
        "vqi: 1.png: worker failed: worker killed",
        "vqi: 2.png: worker failed: worker killed",
        "3 files: 1 encoded, 0 skipped, 2 failed; 10 -> 5 bytes (50.0%)",
    ]


@pytest.fixture
def worker_interrupt(monkeypatch):
    """The Ctrl-C handler a worker process installs, to be called as the signal would."""
    handlers = []
    monkeypatch.setattr(jobs.signal, "signal", lambda signum, handler: handlers.append(handler))
    monkeypatch.setattr(jobs, "_interrupted", False)
    jobs.stop_on_interrupt()
    return lambda: handlers[-1](jobs.signal.SIGINT, None)


def written_job(target, write):
    def work() -> Result:
        jobs.write_output(str(target), write, False)
        return Result("in.png", str(target), ExitStatus.OK, "written")

    return lambda: jobs.run_safely("in.png", str(target), work)


def test_ctrl_c_while_a_worker_writes_leaves_no_output(tmp_path, worker_interrupt):
    def write(stream):
        stream.write(b"half")
        worker_interrupt()

    with pytest.raises(KeyboardInterrupt):
        written_job(tmp_path / "out.vqi", write)()
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_a_worker_commits_reports_the_output(tmp_path, worker_interrupt, monkeypatch):
    commit = atomic._commit

    def interrupted_commit(*args):
        worker_interrupt()  # after the output is complete: it is committed and reported
        commit(*args)

    monkeypatch.setattr(atomic, "_commit", interrupted_commit)
    result = written_job(tmp_path / "out.vqi", lambda stream: stream.write(b"whole"))()
    assert result.status == ExitStatus.OK
    assert os.listdir(tmp_path) == ["out.vqi"]
    following = written_job(tmp_path / "next.vqi", lambda stream: stream.write(b"whole"))()
    assert following.status == ExitStatus.INTERRUPTED  # and no other job starts
    assert os.listdir(tmp_path) == ["out.vqi"]
