"""benchmarks.peers at toy sizes: it runs, its checks hold and its FLOP count is right.

SpeechBrain and ESPnet are optional (``pip install -e '.[bench]'``); their cases are skipped
without them.
"""

import importlib.util
import json
from collections import Counter

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import peers
from benchmarks.peers import run

TOY = [
    "--batch-size", "3", "--min-frames", "30", "--max-frames", "70", "--hidden-size", "16",
    "--warmup", "0", "--train-steps", "2", "--espnet-train-steps", "1",
    "--decode-utterances", "2", "--decode-frames", "64", "--steps", "5", "--beam-size", "3",
    "--decode-repeats", "1",
]  # fmt: skip


def test_peers_runs_and_reports_every_system_in_both_number_formats(tmp_path, capsys):
    systems = "las-asr,las-asr-baseline,pytorch"
    results = peers.main([*TOY, "--systems", systems, "--json", str(tmp_path / "r.json")])
    table = capsys.readouterr().out
    for name in systems.split(","):
        for precision in ("fp32", "bf16"):
            assert f"| {name} | {precision} |" in table
            runs = results["systems"][name][precision]
            assert runs["train"]["steps"] == 2
            assert runs["train"]["gflop_per_step"] > 0
            assert runs["greedy"]["real_time_factor"]["median"] > 0
            assert runs["beam"]["real_time_factor"]["median"] > 0
        assert table.count(f"| {name} |") == 2 + 2 + 1  # training, decoding, bf16 / fp32
    assert "| bf16 / fp32 throughput | training | greedy | beam 3 |" in table
    assert "float32" in table.splitlines()[0] and "bfloat16" in table.splitlines()[0]
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["setup"]["workload"]["steps"] == 5
    assert saved["setup"]["precisions"] == ["fp32", "bf16"]
    assert set(saved["matmul_gflops"]) == {"fp32", "bf16"}
    assert all(rate["median"] > 0 for rate in saved["matmul_gflops"].values())


def test_peers_bf16_runs_under_bfloat16_autocast_and_fp32_without(monkeypatch):
    calls = Counter()

    def record(method):
        def recorded(self, *args):
            autocast = torch.is_autocast_enabled("cpu")
            if autocast:
                assert torch.get_autocast_dtype("cpu") == torch.bfloat16
            calls[method.__name__, "bf16" if autocast else "fp32"] += 1
            return method(self, *args)

        return recorded

    for method in (peers.PlainPyTorch.loss, peers.PlainPyTorch.search):
        monkeypatch.setattr(peers.PlainPyTorch, method.__name__, record(method))
    peers.main([*TOY, "--systems", "pytorch", "--phases", "train,greedy"])
    # Per format: 1 warm-up + 2 timed training steps, 1 warm-up + 1 timed search.
    assert calls == {
        ("loss", "fp32"): 3,
        ("loss", "bf16"): 3,
        ("search", "fp32"): 2,
        ("search", "bf16"): 2,
    }


def test_peers_runs_fp32_alone(capsys):
    results = peers.main(
        [*TOY, "--systems", "las-asr", "--phases", "greedy", "--precisions", "fp32"]
    )
    assert set(results["systems"]["las-asr"]) == {"parameters", "fp32"}
    assert set(results["matmul_gflops"]) == {"fp32"}
    table = capsys.readouterr().out
    assert "| las-asr | fp32 |" in table
    assert "bf16" not in table and "bfloat16" not in table


@pytest.mark.parametrize(
    ("precisions", "message"),
    [
        ("fp32,fp16", "unknown format(s) fp16; valid: fp32, bf16"),
        ("bf16,bf16", "a format is listed twice in bf16,bf16"),
    ],
)
def test_peers_names_a_wrong_number_format(precisions, message, capsys):
    with pytest.raises(SystemExit):
        peers.parse_args(["--precisions", precisions])
    assert f"--precisions: {message}" in capsys.readouterr().err


def baddbmm_flops(input_shape, batch1_shape, batch2_shape, *args, out_shape=None, **kwargs):
    batch, rows, inner = batch1_shape
    return 2 * batch * rows * inner * batch2_shape[-1]


@pytest.mark.parametrize("name", ["las-asr", "pytorch"])
def test_step_flops_equal_what_pytorch_counts(name):
    """The analytic per-step count equals torch's count of one speller step (one utterance)."""
    workload = peers.Workload(hidden_size=8, location_kernel_size=5, symbols=6)
    system = peers.SYSTEM_CLASSES[name](workload, torch.device("cpu"))
    model = system.model.eval()
    frames = 13
    with torch.no_grad():
        encoded = torch.randn(1, frames, 2 * workload.hidden_size)
        # las-asr accumulates U f in place, which FlopCounterMode does not count by itself.
        counter = FlopCounterMode(
            display=False, custom_mapping={torch.ops.aten.baddbmm_: baddbmm_flops}
        )
        with counter:
            memory = model.speller.memory(encoded, torch.tensor([frames]))
        assert counter.get_total_flops() == system.keys_flops(frames)
        state = model.speller.initial_state(memory)
        with counter:
            model.speller.step(torch.tensor([1]), state, memory)
    assert counter.get_total_flops() == system.step_flops(frames)


def test_training_flops_by_hand():
    workload = peers.Workload(hidden_size=8, listener_layers=2, location_kernel_size=3)
    system = peers.SYSTEM_CLASSES["las-asr"](workload, torch.device("cpu"))
    # 5 frames and 2 characters: BLSTM 80 -> 8 on 5 frames, BLSTM 32 -> 8 on 3 frame pairs.
    encoder = 2 * 2 * 4 * 8 * (80 + 8) * 5 + 2 * 2 * 4 * 8 * (32 + 8) * 3
    assert system.encoder_flops(5) == (encoder, 3)
    expected = encoder + system.keys_flops(3) + 3 * system.step_flops(3)  # 2 characters + <eos>
    assert system.forward_flops([5], [2]) == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speechbrain", "espnet"])
def test_peers_runs_the_optional_peers(name, capsys):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    results = peers.main([*TOY, "--systems", f"las-asr,{name}"])
    table = capsys.readouterr().out
    for precision in ("fp32", "bf16"):
        assert {"train", "greedy", "beam"} <= set(results["systems"][name][precision])
        assert f"| {name} | {precision} |" in table
    system = peers.SYSTEM_CLASSES[name](peers.Workload(hidden_size=8), torch.device("cpu"))
    with system.autocast("bf16"):  # SpeechBrain's own context, ESPnet plain autocast
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with system.autocast("fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_a_missing_peer_is_listed_as_skipped(monkeypatch, capsys):
    monkeypatch.setattr(run, "installed", lambda name: name != "speechbrain")
    results = peers.main([*TOY, "--systems", "las-asr,speechbrain", "--phases", "greedy"])
    assert "speechbrain" in results["skipped"]
    assert "| speechbrain | not installed" in capsys.readouterr().out


def test_augment_benchmark_times_every_preset_side_by_side(tmp_path, capsys):
    from benchmarks import augment

    argv = ["--augments", "none,acoustic", "--model", "las_tiny", "--rounds", "1"]
    argv += ["--batch-size", "2", "--min-frames", "50", "--max-frames", "80", "--threads", "1"]
    results = augment.main([*argv, "--json", str(tmp_path / "a.json")])
    assert set(results["audio_seconds_per_second"]) == {"none", "acoustic"}
    assert all(rate > 0 for rate in results["audio_seconds_per_second"].values())
    table = capsys.readouterr().out
    assert "| acoustic |" in table and "| none | " in table
    assert json.loads((tmp_path / "a.json").read_text())["audio_seconds_per_second"]


def test_augment_benchmark_names_an_unknown_preset():
    from benchmarks import augment

    with pytest.raises(SystemExit, match="choose from"):
        augment.load_augment("nonesuch")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_speed_benchmark_runs_every_phase_in_either_number_format(precision, capsys):
    from benchmarks import speed

    args = [
        "--model", "las_tiny", "--device", "cpu", "--batch-size", "2", "--min-frames", "40",
        "--max-frames", "60", "--warmup", "0", "--train-steps", "1", "--decode-utterances", "1",
        "--decode-frames", "48", "--steps", "4", "--beam-size", "2", "--decode-repeats", "1",
        "--precision", precision,
    ]  # fmt: skip
    results = speed.main(args)
    assert results["setup"]["precision"] == precision
    assert results["train"]["audio_seconds_per_second"]["median"] > 0
    assert results["beam"]["speller_steps"] == 5
    assert f"parameters, {precision}, on" in capsys.readouterr().out
