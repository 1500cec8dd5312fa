"""Train kws for a fixed number of steps with 1 process and with N under torchrun; same global batch.

    python -m audioprobe.bench.dist [--steps 40] [--batch 64] [--nproc 2] [--threads 1] [--shape embedded]

Both runs call the training loop the kws_train stage uses (kws.training.train) on the same
synthetic class-shifted log-mel rows (`--steps` × `--batch` of them, one epoch, so every
step is one global batch of `--batch` rows), from the same seed: one plain process, then
`--nproc` torchrun workers (gloo on CPU, nccl with `--device cuda`, one GPU per worker)
each taking batch / nproc rows of every step. Printed per run: steps/s of the training
loop (process start-up and the rendezvous excluded; the one tiny validation pass included);
then the ratio N-process / 1-process and the max |difference| of the final weights (float
reduction order only; docs/scaling.md). `--shape embedded` is the params.yaml
default network (40 mels, 51 frames, n_embd 32, 2 layers), `--shape origin` the origin's
(80 mels, 101 frames, n_embd 128, 4 layers, 192 units). Threads per process are fixed
(`--threads`), so on a CPU box N processes use N × threads cores. The last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHAPES = {
    "embedded": {"n_mels": 40, "frames": 51, "model": {"n_mels": 40, "n_embd": 32, "n_layer": 2, "mlp_hidden": 64,
                                                        "units": 48}},
    "origin": {"n_mels": 80, "frames": 101, "model": {"n_mels": 80, "n_embd": 128, "n_layer": 4, "mlp_hidden": 512,
                                                       "units": 192}},
}
N_CLASSES = 12
SEED = 1234


def _worker(args: argparse.Namespace) -> None:
    """One training run (world from torchrun's environment); rank 0 writes timing and weights."""
    import torch
    from safetensors.torch import save_file

    from audioprobe.parallel import dist
    from audioprobe.kws.net import build_kws_net, param_groups
    from audioprobe.kws.params import KwsModel
    from audioprobe.kws.training import make_deterministic, train

    shape = SHAPES[args.shape]
    with dist.session(args.device, "--device") as d:
        make_deterministic(SEED, args.threads, d.device)
        g = torch.Generator().manual_seed(0)
        n = args.steps * args.batch

        def rows(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.randint(0, N_CLASSES, (k,), generator=g)
            x = torch.randn(k, shape["frames"], shape["n_mels"], generator=g) + 0.3 * y.view(k, 1, 1)  # (k, T, n_mels)
            return x, y

        train_xy, val_xy = rows(n), rows(args.batch)
        model = build_kws_net(KwsModel(**shape["model"]), "lif", N_CLASSES)
        result = train(model, param_groups(model, 0.01), train_xy, val_xy, epochs=1, batch_size=args.batch,
                       lr=1e-3, grad_clip=1.0, eval_batch_size=args.batch, seed=SEED, device=d.device,
                       progress=False, dist=d, amp=args.amp)
        if d.is_main:
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(Path(args.out) / "weights.safetensors"))
            (Path(args.out) / "timing.json").write_text(json.dumps(
                {"seconds": result.seconds, "steps": args.steps, "world": d.world, "backend": d.backend,
                 "device": str(d.device), "val_acc": result.history[-1].val_acc}))


def _run(args: argparse.Namespace, nproc: int, out: Path) -> dict:
    worker = ["-m", "audioprobe.bench.dist", "--worker", "--out", str(out), "--steps", str(args.steps),
              "--batch", str(args.batch), "--threads", str(args.threads), "--shape", args.shape,
              "--device", args.device, "--amp", args.amp]
    cmd = [sys.executable, *worker] if nproc == 1 else [
        sys.executable, "-m", "audioprobe.parallel.launch", "--nproc", str(nproc), *worker]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(cmd, check=True, env=env)
    return json.loads((out / "timing.json").read_text())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m audioprobe.bench.dist", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=64, help="global batch (every run)")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--shape", choices=sorted(SHAPES), default="embedded")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--amp", choices=["bf16", "none"], default="none", help="bf16 autocast (CUDA only)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    if args.batch % args.nproc:
        p.error(f"--batch {args.batch} must be divisible by --nproc {args.nproc}")

    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        runs, weights = {}, {}
        for nproc in (1, args.nproc):
            out = Path(tmp) / f"n{nproc}"
            out.mkdir()
            runs[nproc] = _run(args, nproc, out)
            weights[nproc] = load_file(str(out / "weights.safetensors"))
        diff = max(float((weights[1][k] - weights[args.nproc][k]).abs().max()) for k in weights[1])
    sps = {n: r["steps"] / r["seconds"] for n, r in runs.items()}
    res = {
        "shape": args.shape, "steps": args.steps, "global_batch": args.batch, "threads_per_proc": args.threads,
        "device": runs[args.nproc]["device"], "backend": runs[args.nproc]["backend"], "nproc": args.nproc,
        "cpu_count": os.cpu_count(), "steps_per_s_1": round(sps[1], 3), f"steps_per_s_{args.nproc}": round(sps[args.nproc], 3),
        "ratio": round(sps[args.nproc] / sps[1], 3), "max_abs_weight_diff": diff,
        "val_acc_1": runs[1]["val_acc"], f"val_acc_{args.nproc}": runs[args.nproc]["val_acc"],
    }
    print(f"bench.dist: kws {args.shape} net, {args.steps} steps of global batch {args.batch}, "
          f"{args.threads} thread(s) per process, {os.cpu_count()} CPUs visible")
    print(f"  1 process             {sps[1]:8.2f} steps/s")
    print(f"  {args.nproc} processes ({res['backend']})  {sps[args.nproc]:8.2f} steps/s   ratio {res['ratio']:.2f}x")
    print(f"  final weights: max |1-proc - {args.nproc}-proc| = {diff:.3g}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
