from asr.cpu import (
    CHOSEN_MARKER,
    busy_cores,
    choose_omp_wait_policy,
    passive_no_longer_needed,
    read_cpu_times,
)


def test_read_cpu_times_sums_busy_and_total(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 5 50 800 20 3 2 0 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    assert read_cpu_times(str(stat)) == (160, 980)


def test_read_cpu_times_is_none_without_proc(tmp_path):
    assert read_cpu_times(str(tmp_path / "missing")) is None
    (tmp_path / "odd").write_text("intr 1 2 3\n")
    assert read_cpu_times(str(tmp_path / "odd")) is None


def test_read_cpu_times_leaves_steal_out_of_busy(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 50 800 20 3 2 70 40 0\n")
    assert read_cpu_times(str(stat)) == (160, 1050)


def _reader(*readings):
    readings = iter(readings)
    return lambda: next(readings)


def test_busy_cores_scales_the_busy_share_by_the_cpu_count():
    read = _reader((1000, 4000), (1150, 4200), (1300, 4400), (1450, 4600))  # 150 of 200 busy
    load = busy_cores(0.0, read=read, sleep=lambda s: None, num_cpus=2)
    assert load == 1.5
    assert busy_cores(0.0, read=lambda: None, sleep=lambda s: None) is None


def test_a_burst_in_one_window_is_not_a_busy_machine():
    """Busy only in the first window (a process winding down): the least window counts."""
    sleeps = []
    read = _reader((0, 0), (190, 200), (200, 400), (210, 600))
    load = busy_cores(0.1, read=read, sleep=sleeps.append, num_cpus=2)
    assert load == 0.1 and sleeps == [0.1, 0.1]  # the second window already says free
    steady = _reader((0, 0), (150, 200), (300, 400), (450, 600))
    assert busy_cores(0.1, read=steady, sleep=lambda s: None, num_cpus=2) == 1.5
    free = _reader((0, 0), (5, 200))
    assert busy_cores(0.1, read=free, sleep=lambda s: None, num_cpus=2) == 0.05  # one window


def test_sleeping_threads_only_when_other_processes_are_busy():
    environ = {}
    assert choose_omp_wait_policy(environ, measure=lambda: 0.1) is None
    assert environ == {}
    message = choose_omp_wait_policy(environ, measure=lambda: 1.2)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE", CHOSEN_MARKER: "1"}
    assert "1.2 CPU cores busy" in message
    assert choose_omp_wait_policy({}, measure=lambda: None) is None


def test_the_users_policy_is_kept_and_not_measured():
    def measure():
        raise AssertionError("must not measure")

    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert choose_omp_wait_policy(environ, measure=measure) is None
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_a_run_that_chose_sleeping_threads_is_told_when_the_cpus_are_free():
    environ = {}
    choose_omp_wait_policy(environ, measure=lambda: 1.5)
    assert passive_no_longer_needed(environ, measure=lambda: 1.4) is None  # still busy
    advice = passive_no_longer_needed(environ, measure=lambda: 0.1)
    assert "trainer.resume=true" in advice and "\n" not in advice
    assert passive_no_longer_needed(environ, measure=lambda: None) is None


def test_no_advice_when_the_user_chose_the_policy():
    def measure():
        raise AssertionError("must not measure")

    assert passive_no_longer_needed({"OMP_WAIT_POLICY": "PASSIVE"}, measure=measure) is None
    assert passive_no_longer_needed({}, measure=measure) is None
