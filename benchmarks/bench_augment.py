"""Benchmark: one epoch of on-device augmentation (rstsweep.trainers.augment.train_batches, "basic")
vs torchvision's DataLoader + transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
Normalize) over the same random uint8 CIFAR-shaped images, measured side by side (interleaved
repetitions, after a warm-up of each). Prints one JSON object and a one-line summary.

    .venv/bin/python benchmarks/bench_augment.py [--n 10000] [--batch 256] [--reps 3] [--threads 1]
        [--workers 0]

Both sides produce the same thing: normalised float32 batches of augmented images plus labels.
Goal: on-device >= 10x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="images (32x32x3, random uint8)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3, help="timed epochs per side (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader num_workers")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def make_bundle(images: np.ndarray, labels: np.ndarray, device: str):
    from rstsweep.trainers.data import DataBundle, channel_stats

    train = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(device)  # NHWC -> NCHW
    mean, std = channel_stats(train)
    return DataBundle(
        name="bench",
        train_images=train,
        train_labels=torch.from_numpy(labels).to(device),
        test_images=train[:1],
        test_labels=torch.from_numpy(labels[:1]).to(device),
        num_classes=10,
        mean=mean,
        std=std,
    )


def torchvision_loader(images: np.ndarray, labels: np.ndarray, mean, std, args):
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean.tolist(), std.tolist()),
        ]
    )

    class Images(torch.utils.data.Dataset):  # what torchvision's CIFAR10 does per item
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return transform(Image.fromarray(images[i])), int(labels[i])

    return torch.utils.data.DataLoader(
        Images(), batch_size=args.batch, shuffle=True, drop_last=True, num_workers=args.workers
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ondevice(bundle, args, epoch: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one epoch. CPU time of this process is robust to other load on a
    shared machine; it is a fair measure only with DataLoader workers = 0 (all work in-process)."""
    from rstsweep.trainers.augment import train_batches

    start, cpu = time.perf_counter(), time.process_time()
    for batch in train_batches(bundle, args.batch, "basic", seed=0, epoch=epoch):
        x, y = batch  # consumed, as a training loop would
    sync(args.device)
    assert x.dtype == torch.float32 and len(y) == args.batch
    return time.perf_counter() - start, time.process_time() - cpu


def time_torchvision(loader, args, limit: int | None = None) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for i, (x, y) in enumerate(loader):
        x, y = x.to(args.device), y.to(args.device)  # the trainer would need them on the device
        if limit is not None and i + 1 >= limit:
            break
    sync(args.device)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.n).astype(np.int64)
    bundle = make_bundle(images, labels, args.device)
    loader = torchvision_loader(images, labels, bundle.mean.cpu(), bundle.std.cpu(), args)

    time_ondevice(bundle, args, epoch=10_000)  # warm-up: allocator, kernels
    time_torchvision(loader, args, limit=3)  # warm-up: imports, PIL paths (and workers)
    ours, theirs = [], []
    for rep in range(args.reps):  # interleaved, so machine load hits both sides alike
        ours.append(time_ondevice(bundle, args, epoch=rep))
        theirs.append(time_torchvision(loader, args))
    wall = statistics.median(t[0] for t in ours), statistics.median(t[0] for t in theirs)
    cpu = statistics.median(t[1] for t in ours), statistics.median(t[1] for t in theirs)
    speedup = wall[1] / wall[0]
    result = {
        "benchmark": "augment",
        "n_images": args.n,
        "batch_size": args.batch,
        "threads": args.threads,
        "dataloader_workers": args.workers,
        "device": args.device,
        "ondevice_epoch_s": round(wall[0], 4),
        "torchvision_epoch_s": round(wall[1], 4),
        "speedup": round(speedup, 1),
        "ondevice_epoch_cpu_s": round(cpu[0], 4),
        "torchvision_epoch_cpu_s": round(cpu[1], 4),
        "speedup_cpu": round(cpu[1] / cpu[0], 1) if cpu[0] > 0 else None,
        "ondevice_reps_s": [round(t[0], 4) for t in ours],
        "torchvision_reps_s": [round(t[0], 4) for t in theirs],
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "goal": ">= 10x (wall)",
        "goal_met": speedup >= 10.0,
    }
    print(json.dumps(result))
    print(
        f"augment: on-device {wall[0]:.3f} s/epoch vs torchvision DataLoader {wall[1]:.3f} s/epoch "
        f"({args.n} images 32x32x3, batch {args.batch}, {args.threads} thread(s), "
        f"{args.workers} workers): {speedup:.1f}x faster wall, "
        f"{result['speedup_cpu']}x in CPU time "
        f"(goal >= 10x: {'met' if speedup >= 10 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
