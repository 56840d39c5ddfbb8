"""Hub ids go through huggingface_hub's real code: found in a local HF cache offline, refused clearly
otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap


def _fake_hub_cache(root, repo_id, model_dir):
    """Lay a model out as huggingface_hub's cache does: models--org--name/{refs/main,snapshots/REV}."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(model_dir, repo / "snapshots" / revision)
    return root


def _run(code, env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )


def test_hub_id_loads_from_the_local_cache_offline(tmp_path, tiny_xlmr_dir):
    cache = _fake_hub_cache(tmp_path / "hub", "BAAI/bge-reranker-v2-m3", tiny_xlmr_dir)
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    result = _run(
        """
        from crossrank import Reranker
        r = Reranker("BAAI/bge-reranker-v2-m3")
        print(r.info()["source"], len(r.compute_score([["q", "d"], ["q", "e"]])))
        """,
        env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hub", "2"]


def test_hub_id_missing_offline_says_what_to_do(tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    result = _run(
        """
        from crossrank import Reranker, ModelNotFoundError
        try:
            Reranker("BAAI/bge-reranker-v2-m3")
        except ModelNotFoundError as exc:
            print(exc)
        """,
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "not in the local cache" in result.stdout and "model='embedded'" in result.stdout
