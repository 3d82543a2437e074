"""The training benchmark runs end to end and writes every rate it promises (timings themselves are not tested)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_training.py"


def test_benchmark_writes_all_rates_of_all_networks_and_the_timed_preset(tmp_path):
    out = tmp_path / "result.json"
    finished = subprocess.run([sys.executable, str(BENCHMARK), "--seconds", "0.05", "--time-preset", "q1.3-mlp",
                               "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["networks"]) == {"TwoLayerNet", "ConvNet (LeNet)", "ConvNet-BN"}
    for rates in result["networks"].values():
        for key in ("pil_img_s", "fast_img_s", "model_alone_img_s", "fast_path_gflops"):
            assert rates[key] > 0, key
        assert rates["fast_over_pil"] == rates["fast_img_s"] / rates["pil_img_s"]
    assert result["matmul_fp32_gflops"] > 0 and result["batch_size"] == 64
    assert result["presets"]["q1.3-mlp"]["epochs"] == 2            # smoke mode: at most 2 epochs
    timed = result["presets"]["q1.3-mlp"]
    assert 0 <= timed["test_acc"] <= 100 and len(timed["epoch_seconds"]) == 2
    assert set(timed["minutes_to"]) == {"56 %", "70 %"}                 # a 2-epoch MLP reaches neither
    assert list(timed["minutes_to"].values()) == [None, None]
