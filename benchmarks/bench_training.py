"""Training throughput on real CIFAR-100: the course's PIL pipeline vs the fast batch path vs the model alone.

For the MLP, the LeNet ConvNet and ConvNet-BN it measures images/s of
  (a) the course's pipeline: CIFAR100_loader + Q1.3 torchvision transforms in a DataLoader with 2 workers,
  (b) the fast path: FastLoader with the same Q1.3 recipe applied per batch on the training device,
  (c) the model alone: the same training step on one fixed in-memory batch (the ceiling for any loader),
and the achieved GFLOP/s next to the machine's fp32 matmul rate. With --protocol it also times the full Q1.3
protocol (both nets, 10 epochs, test evaluation every epoch) and with --time-preset any preset end to end, with
its minutes to 56 % and 70 % (on a GPU: q3-fast and ConvNet-BN's 50-epoch recipe). Results:
benchmarks/results/<host-kind>.json.

    python benchmarks/bench_training.py [--device cuda] [--seconds 8] [--protocol] [--time-preset q3-fast ...]
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from cv_helpers.config import by_mode, describe_device
from cv_helpers.data import CIFAR100_loader, load_cifar100
from cv_helpers.fast_loader import FastLoader
from cv_helpers.history import minutes_to_accuracy
from cv_helpers.models import build_model
from cv_helpers.transforms import get_augmentation, make_train_transform
from cv_helpers.workbench.experiment import run_experiment
from cv_helpers.workbench.presets import get_preset
from cv_helpers.workbench.results import ACCURACY_TARGETS

BATCH_SIZE = 64
# name -> (registry name, kwargs, compile): compile pays off for ConvNet-BN only (measured on CPU).
NETWORKS = {"TwoLayerNet": ("mlp", {"hidden_size": 64}, False), "ConvNet (LeNet)": ("convnet", {}, False),
            "ConvNet-BN": ("convnet-bn", {}, True)}


def train_step(runner: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> None:
    loss = nn.functional.cross_entropy(runner(images), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def images_per_second(runner: nn.Module, optimizer: torch.optim.Optimizer, batches, device: torch.device,
                      seconds: float, warmup: int = 5) -> float:
    """Trains on batches from the iterator for about `seconds` after `warmup` steps; returns images/s."""
    iterator = iter(batches)
    for _ in range(warmup):
        images, labels = next(iterator)
        train_step(runner, optimizer, images.to(device), labels.to(device))
    _sync(device)
    seen, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        images, labels = next(iterator)
        train_step(runner, optimizer, images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
        seen += len(labels)
    _sync(device)
    return seen / (time.perf_counter() - started)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def forever(loader):
    while True:
        yield from loader


def flops_per_image(model: nn.Module, device: torch.device) -> float:
    """Returns forward + backward FLOPs for one 3x32x32 image (measured on a batch of 64)."""
    images = torch.randn(BATCH_SIZE, 3, 32, 32, device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(images), torch.zeros(BATCH_SIZE, dtype=torch.long, device=device)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / BATCH_SIZE


def matmul_gflops(device: torch.device, size: int = 2048, seconds: float = 3.0) -> float:
    """Returns the fp32 matmul rate of this device in GFLOP/s (the practical peak)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    _sync(device)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    _sync(device)
    return 2 * size ** 3 * count / (time.perf_counter() - started) / 1e9


def host_kind(device: torch.device) -> str:
    """Returns the results file's name for this device, e.g. 'cpu-2-threads-x86_64-amd-epyc-avx2'."""
    return re.sub(r"[^a-z0-9_]+", "-", describe_device(device).lower()).strip("-")


def measure_network(name: str, device: torch.device, seconds: float, fast_loader: FastLoader,
                    pil_loader: DataLoader, fixed_batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
    registry_name, kwargs, compile_it = NETWORKS[name]
    compile_it = by_mode(compile_it, False)  # smoke mode (the benchmark's own test) never compiles
    torch.manual_seed(0)
    model = build_model(registry_name, **kwargs).to(device)
    runner = torch.compile(model) if compile_it else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rates = {
        "model_alone_img_s": images_per_second(runner, optimizer, forever([fixed_batch]), device, seconds, warmup=10),
        "fast_img_s": images_per_second(runner, optimizer, forever(fast_loader), device, seconds),
        "pil_img_s": images_per_second(runner, optimizer, forever(pil_loader), device, seconds),
    }
    flops = flops_per_image(model, device)
    return {**rates, "compiled": compile_it, "fast_over_pil": rates["fast_img_s"] / rates["pil_img_s"],
            "fast_over_model_alone": rates["fast_img_s"] / rates["model_alone_img_s"],
            "gflop_per_image": flops / 1e9, "fast_path_gflops": flops * rates["fast_img_s"] / 1e9}


def time_presets(names: list[str], device: torch.device) -> dict[str, dict]:
    """Trains each named preset from scratch (no run folder); returns its wall time (training, test evaluation
    every epoch, compilation, data loading), final test accuracy, seconds per epoch (training and evaluation) and
    the minutes of those until each of ACCURACY_TARGETS was first reached (None: never)."""
    timings = {}
    for name in names:
        started = time.perf_counter()
        result = run_experiment(get_preset(name), device=device, progress=False)
        timings[name] = {"wall_seconds": time.perf_counter() - started, "test_acc": result.test_acc,
                         "epochs": result.history.epochs, "epoch_seconds": result.history.seconds,
                         "minutes_to": {f"{target:g} %": minutes_to_accuracy(result.history, target)
                                        for target in ACCURACY_TARGETS}}
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per rate")
    parser.add_argument("--protocol", action="store_true", help="also time the full Q1.3 protocol")
    parser.add_argument("--time-preset", nargs="+", default=[], metavar="PRESET",
                        help="also train these presets end to end and time them (on a GPU: q1.4-convnet, the "
                             "ConvNet-BN's 50-epoch recipe)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default: benchmarks/results/<host-kind>.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    train = load_cifar100(True)
    fast_loader = FastLoader(train.images, train.labels["fine_labels"], BATCH_SIZE, shuffle=True,
                             augmentation=get_augmentation("q1.3"), device=device, drop_last=True)
    pil_loader = DataLoader(CIFAR100_loader(train=True, transform=make_train_transform("q1.3")), BATCH_SIZE,
                            shuffle=True, num_workers=2, persistent_workers=True, drop_last=True)
    fixed_batch = next(iter(fast_loader))
    result = {"host_kind": host_kind(device), "device": str(device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "batch_size": BATCH_SIZE, "augmentation": "q1.3",
              "matmul_fp32_gflops": matmul_gflops(device), "networks": {}}
    for name in NETWORKS:
        result["networks"][name] = measure_network(name, device, args.seconds, fast_loader, pil_loader, fixed_batch)
        print(name, json.dumps(result["networks"][name]), flush=True)
    if args.protocol:
        runs = time_presets(["q1.3-mlp", "q1.3-convnet"], device)
        result["q1_3_protocol"] = {"wall_seconds": sum(r["wall_seconds"] for r in runs.values()),
                                   "test_acc": {name: r["test_acc"] for name, r in runs.items()}}
    if args.time_preset:
        result["presets"] = time_presets(args.time_preset, device)
    out = args.out or Path(__file__).resolve().parent / "results" / f"{result['host_kind']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result)
    print(f"written {out}")


def print_table(result: dict) -> None:
    print(f"\n{result['host_kind']}: fp32 matmul {result['matmul_fp32_gflops']:.0f} GFLOP/s")
    print(f"{'network':18s} {'PIL img/s':>10s} {'fast img/s':>11s} {'model img/s':>12s} {'fast/PIL':>9s} "
          f"{'fast/model':>11s} {'GFLOP/s':>8s}")
    for name, r in result["networks"].items():
        print(f"{name:18s} {r['pil_img_s']:10.0f} {r['fast_img_s']:11.0f} {r['model_alone_img_s']:12.0f} "
              f"{r['fast_over_pil']:8.1f}x {100 * r['fast_over_model_alone']:10.0f}% {r['fast_path_gflops']:8.1f}")
    if "q1_3_protocol" in result:
        p = result["q1_3_protocol"]
        print(f"full Q1.3 protocol: {p['wall_seconds']:.0f} s wall, test accuracy {p['test_acc']}")
    for name, r in result.get("presets", {}).items():
        reached = ", ".join(f"{target} {'never' if m is None else f'in {m:.1f} min'}"
                            for target, m in r["minutes_to"].items())
        print(f"{name}: {r['epochs']} epochs in {r['wall_seconds']:.0f} s wall, test accuracy {r['test_acc']:.2f} % "
              f"({reached})")


if __name__ == "__main__":
    main()
