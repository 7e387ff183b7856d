import pytest
import torch

# Docstring-example counts per module, filled by tests/test_doctests.py and summarised at the end
# of the run so that "N examples ran, M skipped" is visible without reading every test id.
_DOCTEST_COUNTS = pytest.StashKey[dict]()


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Tests are tiny; more threads only add scheduling noise on a 2-core machine.
    torch.set_num_threads(1)
    yield


@pytest.fixture
def doctest_counts(request) -> dict:
    """Module name -> its DoctestCounts, shared by the whole session."""
    return request.config.stash.setdefault(_DOCTEST_COUNTS, {})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = config.stash.get(_DOCTEST_COUNTS, {})
    if not counts:
        return
    with_examples = {name: c for name, c in counts.items() if c.examples}
    run = sum(c.run for c in counts.values())
    skipped = sum(c.skipped for c in counts.values())
    terminalreporter.section("docstring examples")
    for name, c in sorted(with_examples.items()):
        terminalreporter.write_line(f"{name}: {c.run} run, {c.skipped} skipped, {c.failed} failed")
    terminalreporter.write_line(
        f"{run} examples run, {skipped} skipped, in {len(with_examples)} of {len(counts)} modules"
    )


@pytest.fixture
def spy_search(monkeypatch):
    """``spy_search("beam_search")`` wraps that search of asr.recognizer; returns the list of
    keyword arguments of each call (the search itself still runs)."""
    import asr.recognizer

    def install(name: str) -> list[dict]:
        passed, search = [], getattr(asr.recognizer, name)

        def spy(model, features, feature_lens, **options):
            passed.append(options)
            return search(model, features, feature_lens, **options)

        monkeypatch.setattr(asr.recognizer, name, spy)
        return passed

    return install
