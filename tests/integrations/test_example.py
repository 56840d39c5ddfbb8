"""examples/rag_langchain.py runs end to end offline on the embedded model and prints five reranked hits."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rag_langchain.py"


@pytest.mark.slow
def test_rag_langchain_example_runs(shared_data):
    env = {**os.environ, "CROSSRANK_SHARED_DATA": str(shared_data)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--docs", "60", "--candidates", "10"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    hits = re.findall(r"^(\d)\. (\d\.\d{3})  (\S+)  \(BM25 #(\d+)", done.stdout, flags=re.M)
    assert [int(h[0]) for h in hits] == [1, 2, 3, 4, 5]
    scores = [float(h[1]) for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(h[2].startswith("test-") for h in hits) and all(1 <= int(h[3]) <= 10 for h in hits)


@pytest.mark.parametrize("option", ["--docs", "--candidates"])
def test_rag_langchain_example_refuses_zero_documents_or_candidates(option):
    """--docs 0 died in langchain's BM25Retriever with 'not enough values to unpack'; --candidates 0
    printed the query and nothing else."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), option, "0"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and f"argument {option}: expected a positive integer" in done.stderr
