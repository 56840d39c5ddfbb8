"""Without its framework, an adapter's import fails with crossrank's MissingDependencyError naming the
extra. Each check runs in a fresh interpreter where the framework's package cannot be imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    ("crossrank.integrations.langchain", "langchain_core", "langchain"),
    ("crossrank.integrations.llama_index", "llama_index", "llamaindex"),
    ("crossrank.integrations.haystack", "haystack", "haystack"),
]

SCRIPT = """
import sys
sys.modules[{blocked!r}] = None  # the import system then raises ImportError, as for a missing package
from crossrank.errors import MissingDependencyError
import crossrank.integrations  # imports no framework
try:
    __import__({module!r})
except MissingDependencyError as exc:
    print(exc)
else:
    raise SystemExit("imported without its framework")
"""


@pytest.mark.parametrize(("module", "blocked", "extra"), CASES)
def test_missing_framework_names_the_extra(module, blocked, extra):
    script = SCRIPT.format(blocked=blocked, module=module)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"pip install 'crossrank[{extra}]'" in done.stdout
