"""Every docstring example in ``asr/`` runs, and fails the suite when it is wrong.

The modules are found by walking the package, so a new or split module is covered without being
listed here. Examples marked ``# doctest: +SKIP`` (those that need a checkpoint or an audio file)
are counted as skipped, never as run; the suite fails if no example ran at all, so a runner that
skips everything cannot pass.
"""

import doctest
import functools
import importlib
import io
import pkgutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import asr


def _raise(name: str) -> None:
    # walk_packages calls this when a subpackage fails to import; without it, an ImportError
    # would silently drop the whole subpackage from the walk.
    raise ImportError(f"cannot import package {name} while looking for modules")


MODULES = ["asr"] + sorted(
    module.name for module in pkgutil.walk_packages(asr.__path__, "asr.", onerror=_raise)
)


@dataclass(frozen=True)
class DoctestCounts:
    examples: int  # every example found in the module's docstrings
    run: int  # examples executed (DocTestRunner.tries)
    skipped: int  # examples marked +SKIP
    failed: int
    report: str  # doctest's own account of the failures


@functools.cache
def run_doctests(name: str) -> DoctestCounts:
    """Run the examples of module ``name`` once per session (the count test reuses them)."""
    module = importlib.import_module(name)  # an import error fails the test, never skips it
    # DocTestFinder only takes docstrings of objects defined in the module itself, so a function
    # re-exported by a package is run once, in the module that defines it.
    tests = doctest.DocTestFinder().find(module, name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    for test in tests:
        runner.run(test, out=report.write)
    examples = sum(len(test.examples) for test in tests)
    skipped = sum(bool(ex.options.get(doctest.SKIP)) for test in tests for ex in test.examples)
    return DoctestCounts(examples, runner.tries, skipped, runner.failures, report.getvalue())


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, doctest_counts):
    counts = run_doctests(name)
    doctest_counts[name] = counts
    if counts.failed:
        pytest.fail(f"{name}: {counts.failed} of {counts.run} examples failed\n{counts.report}")
    # Every example either ran or was explicitly skipped: nothing falls through the cracks.
    assert counts.run + counts.skipped == counts.examples


def test_examples_actually_ran():
    per_module = {name: run_doctests(name) for name in MODULES}
    ran = sum(counts.run for counts in per_module.values())
    table = "\n".join(
        f"  {name}: {c.run} run, {c.skipped} skipped"
        for name, c in per_module.items()
        if c.examples
    )
    assert ran > 0, f"no docstring example ran in {len(MODULES)} modules:\n{table}"
    # The model core documents its shapes with examples that must keep running, not be skipped.
    for name in ("asr.features", "asr.metrics", "asr.text", "asr.models.listener"):
        assert per_module[name].run > 0, f"{name}'s examples no longer run:\n{table}"


def test_the_walk_finds_every_source_file():
    # Every .py file under asr/ is a module the runner visits (subpackages included).
    root = Path(asr.__file__).parent
    files = set()
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        files.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert files == set(MODULES)


def test_skipped_examples_count_as_skipped_not_run(monkeypatch):
    module = types.ModuleType("asr_probe", ">>> 1 + 1  # doctest: +SKIP\n3\n>>> 2 * 2\n5\n")
    monkeypatch.setitem(sys.modules, "asr_probe", module)
    counts = run_doctests.__wrapped__("asr_probe")  # uncached: the probe is not a real module
    assert (counts.examples, counts.run, counts.skipped, counts.failed) == (2, 1, 1, 1)
    assert "Expected:\n    5\nGot:\n    4" in counts.report
