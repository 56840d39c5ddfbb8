"""rerank_table on a real local Ray (Ray Data actor pool): row-for-row the scores of Reranker.rerank on
a Parquet file of ArguAna lists, a bad row included; a rerun skips the finished parts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crossrank.batch import rerank_table

from .data import BAD_ROW, arguana_rows, assert_same_as_library, read_output, write_parquet

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

GOOD = {"query": "capital of france", "candidates": ["Paris is the capital.", "Berlin"]}


def test_ray_data_job_matches_the_library_row_for_row(ray_cluster, tmp_path, shared_data, tiny_xlmr_dir):
    from crossrank import Reranker

    rows = arguana_rows(shared_data, queries=8)
    source = write_parquet([*rows[:5], BAD_ROW | {"qid": "bad"}, *rows[5:]], tmp_path / "arguana.parquet")
    seen: list[tuple[int, int]] = []
    summary = rerank_table(
        source, tmp_path / "out", model=str(tiny_xlmr_dir), backend="torch", max_length=96, top_n=3,
        rows_per_file=3, concurrency=2, num_cpus=1, progress=lambda done, total: seen.append((done, total)),
    )
    assert (summary.written, summary.rows, summary.errors) == (3, 9, 1)
    assert seen[-1] == (9, 9)
    assert ray_cluster.is_initialized()  # the session's Ray was used, not stopped
    out = read_output(tmp_path / "out")
    assert [r["qid"] for r in out] == [r["qid"] for r in rows[:5]] + ["bad"] + [r["qid"] for r in rows[5:]]
    assert "document 1 is empty" in out[5]["error"]
    reranker = Reranker(str(tiny_xlmr_dir), backend="torch", max_length=96)
    for row in out[:5] + out[6:]:
        assert_same_as_library(reranker, row, top_n=3)
    again = rerank_table(source, tmp_path / "out", model=str(tiny_xlmr_dir), backend="torch", max_length=96,
                         top_n=3, rows_per_file=3, concurrency=2, num_cpus=1, progress=False)
    assert (again.written, again.skipped) == (0, 3)


def test_relative_paths_reach_the_actors_whatever_their_working_folder(
    ray_cluster, tmp_path, monkeypatch, tiny_xlmr_dir
):
    """The session's Ray started in another folder, as a cluster does: input, output and a local model
    folder given relative to this process's working folder still name the same files in the actors."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(tiny_xlmr_dir, work / "model")
    write_parquet([GOOD], work / "in.parquet")
    monkeypatch.chdir(work)
    summary = rerank_table("in.parquet", "out", model="model", backend="torch", max_length=96, progress=False)
    assert (summary.written, summary.errors) == (1, 0)
    assert summary.output == work / "out"
    from crossrank import Reranker

    assert_same_as_library(Reranker("model", backend="torch", max_length=96), read_output(work / "out")[0])


def test_a_job_whose_actors_cannot_load_the_model_leaves_no_manifest(ray_cluster, tmp_path, tiny_xlmr_dir):
    """int8 is refused when the model is loaded, in the actors: the corrected rerun must not be refused."""
    source = write_parquet([GOOD], tmp_path / "in.parquet")
    args = {"model": str(tiny_xlmr_dir), "backend": "torch", "max_length": 96, "progress": False}
    with pytest.raises(Exception, match="int8"):
        rerank_table(source, tmp_path / "out", **args, dtype="int8")
    assert not (tmp_path / "out" / "_crossrank.json").exists()
    assert rerank_table(source, tmp_path / "out", **args).written == 1


def test_gpus_this_machine_lacks_are_refused_not_waited_for(tmp_path):
    """Ray Data would wait for them forever ("The job may hang forever unless the cluster scales up")."""
    source = write_parquet([GOOD], tmp_path / "in.parquet")
    command = [sys.executable, "-m", "crossrank.cli.main", "rerank-table", str(source), "-o",
               str(tmp_path / "out"), "--actor-gpus", "1000"]
    run = subprocess.run(command, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "1 actors x 1000 GPUs do not fit this machine's" in run.stderr
    assert not (tmp_path / "out" / "_crossrank.json").exists()
