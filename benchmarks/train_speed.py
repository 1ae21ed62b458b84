"""How long the course's network takes to train, three ways, on this machine's CPU.

The course model (784-100-10, ReLU then softmax, Adam, batch 32, 5 epochs on the 60,000
MNIST training images) is trained

a. the naive way, as the original notebook did: ``train_x / 255.0`` (float64 NumPy
   arrays) and ``compile()`` with its defaults;
b. the course's way, as lesson 3 does: the uint8 images of ``data.load_mnist()``,
   ``models.build_ann(rescale=True)`` (a ``Rescaling(1/255)`` layer first, so Keras
   copies 47 MB of bytes rather than 188 MB of float32) and
   ``compile(..., steps_per_execution=100)``;
c. with a plain PyTorch loop of the same network and optimiser (Adam with Keras's
   defaults: learning rate 1e-3, epsilon 1e-7), data shuffled every epoch. PyTorch is
   optional: when it is not installed, (c) is reported as skipped;
d. as (b), compiled by XLA (``jit_compile=True``). Keras refuses XLA while TensorFlow's
   op determinism is on (it warns and falls back), so (d) seeds without it; every run's
   weights are hashed, and the report says whether repeated runs of (b) and (d) on this
   machine end with the same weights.

Each training runs in a fresh Python process, so that its peak memory can be read, and
the variants alternate (a, b, c, d, a, b, c, d, ...) so that a change of load on the
machine hits them alike. The script prints a markdown table of medians, minima and
maxima, the ratios b/a, b/c, d/b and d/c of the medians, and a lower bound on the
time: the arithmetic of the training (floating-point operations) divided by the speed
at which this CPU multiplies matrices of the training's shapes.

Usage::

    python benchmarks/train_speed.py                      # full size, 5 repeats
    python benchmarks/train_speed.py --out bench.json     # also write JSON (or .md)
    python benchmarks/train_speed.py --train-size 2000 --epochs 1 --repeats 1  # smoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_INPUT, N_HIDDEN, N_OUTPUT = 28 * 28, 100, 10

VARIANTS = {
    "a": "naive: float64 `train_x / 255.0`, default compile",
    "b": "course (lesson 3): uint8 + Rescaling, steps_per_execution=100",
    "c": "plain PyTorch loop, float32",
    "d": "course + XLA: as (b), jit_compile=True, op determinism off",
}
RESULT_PREFIX = "RESULT "
TARGETS = {"b/a": 0.40, "b/c": 0.90, "d/c": 1.0, "accuracy_b": 0.97}


# --------------------------------------------------------------------------- children
def peak_rss_mb() -> float:
    """Return this process's peak resident memory (VmHWM) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def train_keras(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train with Keras the naive way (a), the course's way (b) or with XLA (d)."""
    from course_utils import repro

    repro.quiet_tensorflow()
    import keras

    from course_utils import data, models

    # Keras silently drops jit_compile while op determinism is on.
    repro.set_seed(args.seed, deterministic=variant != "d")
    (train_x, train_y), (test_x, test_y) = data.load_mnist()
    if variant == "a":
        train_x, test_x = train_x / 255.0, test_x / 255.0
        model = models.build_ann()
        compile_options: dict[str, Any] = {}
    else:
        model = models.build_ann(rescale=True)
        compile_options = {"steps_per_execution": 100, "jit_compile": variant == "d"}
    train_x, train_y = train_x[: args.train_size], train_y[: args.train_size]

    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_options,
    )
    epoch_ends: list[float] = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch_ends.append(time.perf_counter())
    )
    start = time.perf_counter()
    model.fit(
        train_x,
        train_y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
        callbacks=[record],
    )
    fit_s = time.perf_counter() - start
    _, accuracy = model.evaluate(test_x, test_y, verbose=0)
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return {
        "weights_sha256": digest.hexdigest(),
        "fit_s": fit_s,
        "epoch_s": np.diff([start, *epoch_ends]).tolist(),
        "test_accuracy": float(accuracy),
        "input_dtype": str(train_x.dtype),
    }


def train_torch(args: argparse.Namespace) -> dict[str, Any]:
    """Train the same network with a plain PyTorch loop (c)."""
    try:
        import torch
    except ImportError as error:
        return {
            "skipped": "PyTorch is not installed (optional; `pip install torch` "
            f"to compare): {error}"
        }
    from course_utils import data

    torch.manual_seed(args.seed)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    (train_x, train_y), (test_x, test_y) = data.load_mnist(scaled=True)
    inputs = torch.from_numpy(train_x[: args.train_size].reshape(-1, N_INPUT))
    labels = torch.from_numpy(train_y[: args.train_size].astype(np.int64))
    model = torch.nn.Sequential(
        torch.nn.Linear(N_INPUT, N_HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(N_HIDDEN, N_OUTPUT),  # softmax is inside the loss
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    epoch_ends = []
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(inputs))
        for first in range(0, len(inputs), args.batch_size):
            batch = order[first : first + args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[batch]), labels[batch])
            loss.backward()
            optimizer.step()
        epoch_ends.append(time.perf_counter())
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        scores = model(torch.from_numpy(test_x.reshape(-1, N_INPUT)))
    accuracy = float((scores.argmax(dim=1).numpy() == test_y).mean())
    return {
        "fit_s": fit_s,
        "epoch_s": np.diff([start, *epoch_ends]).tolist(),
        "test_accuracy": accuracy,
        "input_dtype": str(inputs.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
    }


def run_child(variant: str, args: argparse.Namespace) -> None:
    """Train one variant (or time matrix products) and print the result as JSON."""
    if variant == "gemm":
        result: dict[str, Any] = gemm_gflops(args.batch_size, args.gemm_seconds)
    elif variant == "c":
        result = train_torch(args)
    else:
        result = train_keras(variant, args)
    result["peak_rss_mb"] = peak_rss_mb()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- parent
def spawn(
    variant: str, args: argparse.Namespace, threads: int | None = None
) -> dict[str, Any]:
    """Run one child in a fresh Python process and return what it printed.

    ``threads`` limits the BLAS and OpenMP threads of the child (None: their default).
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        variant,
        "--train-size",
        str(args.train_size),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
        "--torch-threads",
        str(args.torch_threads),
        "--gemm-seconds",
        str(args.gemm_seconds),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"variant {variant} failed (exit {done.returncode}):\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def flops_per_epoch(n_images: int) -> float:
    """Floating-point operations of one epoch: forward 2·(784·100 + 100·10) per image,
    backward twice the forward (the usual 3× rule for forward + backward)."""
    forward = 2 * (N_INPUT * N_HIDDEN + N_HIDDEN * N_OUTPUT)
    return 3.0 * forward * n_images


def gemm_gflops(batch_size: int, seconds: float = 1.0) -> dict[str, float]:
    """Measure NumPy float32 matrix products on the shapes of one training step.

    One step multiplies, forward, (batch, 784)@(784, 100) and (batch, 100)@(100, 10);
    backward, the weight gradients (784, batch)@(batch, 100) and
    (100, batch)@(batch, 10) and the hidden gradient (batch, 10)@(10, 100). The best
    of several rounds is kept (the rate is an upper bound, so time / rate a lower
    bound). For comparison the rate of one large product is measured too.
    """
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return rng.random(shape, dtype=np.float32)

    x, h = rand(batch_size, N_INPUT), rand(batch_size, N_HIDDEN)
    dz1, dz2 = rand(batch_size, N_HIDDEN), rand(batch_size, N_OUTPUT)
    w1, w2 = rand(N_INPUT, N_HIDDEN), rand(N_HIDDEN, N_OUTPUT)
    xt, ht = np.ascontiguousarray(x.T), np.ascontiguousarray(h.T)
    w2t = np.ascontiguousarray(w2.T)

    def step() -> None:
        x @ w1
        h @ w2
        xt @ dz1
        ht @ dz2
        dz2 @ w2t

    step_flops = (
        2
        * batch_size
        * (N_INPUT * N_HIDDEN + N_HIDDEN * 10 + N_INPUT * N_HIDDEN + N_HIDDEN * 10 * 2)
    )
    big_a, big_b = rand(4096, N_INPUT), rand(N_INPUT, 1024)

    def best_rate(work: Any, flops: float, reps: int) -> float:
        best = float("inf")
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            for _ in range(reps):
                work()
            best = min(best, (time.perf_counter() - start) / reps)
        return flops / best / 1e9

    return {
        "training_shapes": best_rate(step, step_flops, 200),
        "large_4096x784x1024": best_rate(
            lambda: big_a @ big_b, 2 * 4096 * N_INPUT * 1024, 3
        ),
    }


def describe_machine() -> dict[str, Any]:
    """CPU model, cores, load and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name, distributions in (
        ("tensorflow", ("tensorflow", "tensorflow-cpu")),
        ("keras", ("keras",)),
        ("torch", ("torch",)),
    ):
        versions[name] = None
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "system": platform.platform(),
        "versions": versions,
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, minimum and maximum of a variant's repeated runs."""
    if runs and "skipped" in runs[0]:
        return {"status": "skipped", "reason": runs[0]["skipped"]}
    fits = [r["fit_s"] for r in runs]
    accuracies = [r["test_accuracy"] for r in runs]
    summary = {
        "status": "ok",
        "runs": len(runs),
        "fit_s": fits,
        "fit_s_median": statistics.median(fits),
        "fit_s_min": min(fits),
        "fit_s_max": max(fits),
        "first_epoch_s_median": statistics.median(r["epoch_s"][0] for r in runs),
        # Later epochs show the steady cost per epoch, without tracing and set-up.
        "later_epoch_s_median": (
            statistics.median(statistics.mean(r["epoch_s"][1:]) for r in runs)
            if len(runs[0]["epoch_s"]) > 1
            else None
        ),
        "test_accuracy": accuracies,
        "test_accuracy_median": statistics.median(accuracies),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "input_dtype": runs[0]["input_dtype"],
    }
    digests = {r.get("weights_sha256") for r in runs}
    if None not in digests:
        # Same seed, same machine: did every run end with the same weights?
        summary["same_weights_every_run"] = len(digests) == 1
    if "torch_threads" in runs[0]:
        summary["torch_threads"] = runs[0]["torch_threads"]
    return summary


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every variant ``repeats`` times, alternating, and gather the results."""
    variants = [v for v in "abcd" if v in args.variants]
    machine = describe_machine()
    load_before = load_average()
    # Small products run best on one thread, and a loaded machine makes several
    # threads wait for each other: keep the faster of one thread and the default.
    measured = [spawn("gemm", args, threads) for threads in (1, None)]
    rates = {key: max(m[key] for m in measured) for key in measured[0]}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for repeat in range(args.repeats):
        for variant in variants:
            if runs[variant] and "skipped" in runs[variant][0]:
                continue
            result = spawn(variant, args)
            runs[variant].append(result)
            shown = (
                f"skipped ({result['skipped'][:40]}...)"
                if "skipped" in result
                else f"{result['fit_s']:.2f} s, accuracy {result['test_accuracy']:.4f}"
            )
            print(
                f"[{repeat + 1}/{args.repeats}] {variant}: {shown}",
                file=sys.stderr,
                flush=True,
            )
    summary = {v: summarise(r) for v, r in runs.items()}
    ok = {v: s for v, s in summary.items() if s["status"] == "ok"}

    def ratio(top: str, bottom: str) -> float | None:
        if top in ok and bottom in ok:
            return ok[top]["fit_s_median"] / ok[bottom]["fit_s_median"]
        return None

    flops = flops_per_epoch(args.train_size)
    total = flops * args.epochs
    return {
        "machine": {**machine, "load_average_before": load_before},
        "settings": {
            "train_size": args.train_size,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "seed": args.seed,
            "torch_threads": args.torch_threads or None,
        },
        "variants": {v: {"description": VARIANTS[v], **s} for v, s in summary.items()},
        "ratios": {
            "b/a": ratio("b", "a"),
            "b/c": ratio("b", "c"),
            "d/b": ratio("d", "b"),
            "d/c": ratio("d", "c"),
        },
        "arithmetic": {
            "gflop_per_epoch": flops / 1e9,
            "gflop_total": total / 1e9,
            "gemm_gflops_training_shapes": rates["training_shapes"],
            "gemm_gflops_large": rates["large_4096x784x1024"],
            "lower_bound_s": total / (rates["training_shapes"] * 1e9),
            "lower_bound_large_gemm_s": total / (rates["large_4096x784x1024"] * 1e9),
        },
        "load_average_after": load_average(),
        "targets": TARGETS,
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table and a few lines of context."""
    machine, settings = report["machine"], report["settings"]
    versions = ", ".join(
        f"{k} {v}" for k, v in machine["versions"].items() if v is not None
    )
    lines = [
        f"Training the course model {settings['epochs']} epochs on "
        f"{settings['train_size']:,} images, batch {settings['batch_size']}, "
        f"{settings['repeats']} repeats alternating the variants, each in a fresh "
        "process.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable); load average (1, 5, 15 min) "
        f"{machine['load_average_before']} before, {report['load_average_after']} "
        f"after. {versions}.",
        "",
        "| variant | fit s (median) | min | max | 1st epoch s | later epochs s/epoch "
        "| test accuracy | peak RSS MB | same weights every run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    same = {True: "yes", False: "no"}
    for name, v in report["variants"].items():
        label = f"({name}) {v['description']}"
        if "torch_threads" in v:
            label += f", {v['torch_threads']} thread(s)"
        if v["status"] != "ok":
            lines.append(f"| {label} | skipped: {v['reason']} | | | | | | | |")
            continue
        later = v["later_epoch_s_median"]
        lines.append(
            f"| {label} | {v['fit_s_median']:.2f} | {v['fit_s_min']:.2f} | "
            f"{v['fit_s_max']:.2f} | {v['first_epoch_s_median']:.2f} | "
            f"{'n/a' if later is None else f'{later:.2f}'} | "
            f"{v['test_accuracy_median']:.4f} | {v['peak_rss_mb']:.0f} | "
            f"{same.get(v.get('same_weights_every_run'), 'n/a')} |"
        )
    arithmetic = report["arithmetic"]
    lines.append(
        f"| lower bound: {arithmetic['gflop_total']:.1f} GFLOP at "
        f"{arithmetic['gemm_gflops_training_shapes']:.1f} GFLOP/s | "
        f"{arithmetic['lower_bound_s']:.2f} | | | | "
        f"{arithmetic['lower_bound_s'] / settings['epochs']:.2f} | | | |"
    )
    lines.append("")
    for key in ("b/a", "b/c", "d/c"):
        target = TARGETS[key]
        value = report["ratios"][key]
        shown = "n/a (a variant was skipped or not run)"
        if value is not None:
            verdict = "meets" if value <= target else "misses"
            shown = f"{value:.3f} ({verdict} the target ≤ {target:.2f})"
        lines.append(f"- ratio {key} of the medians: {shown}")
    lines.append(
        f"- arithmetic: {arithmetic['gflop_per_epoch']:.1f} GFLOP per epoch; NumPy "
        f"float32 products run at {arithmetic['gemm_gflops_training_shapes']:.1f} "
        f"GFLOP/s on the training's shapes, {arithmetic['gemm_gflops_large']:.1f} "
        f"GFLOP/s on a large product (lower bound "
        f"{arithmetic['lower_bound_large_gemm_s']:.2f} s)"
    )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train-size", type=int, default=60_000, metavar="N")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        metavar="N",
        help="threads for PyTorch (default 0: PyTorch's own default, one per core)",
    )
    parser.add_argument(
        "--gemm-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="time spent measuring each matrix-product rate (default 1)",
    )
    parser.add_argument(
        "--variants", default="abcd", help="which of a, b, c, d to run (default abcd)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        action="append",
        default=[],
        help="also write the report there: .json as JSON, else markdown (repeatable)",
    )
    parser.add_argument(
        "--child", choices=[*sorted(VARIANTS), "gemm"], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    for name in ("train_size", "epochs", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants takes letters from abcd, got {args.variants!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args)
        return 0
    report = benchmark(args)
    markdown = to_markdown(report)
    print(markdown)
    for out in args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        is_json = out.suffix == ".json"
        out.write_text(json.dumps(report, indent=2) + "\n" if is_json else markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
