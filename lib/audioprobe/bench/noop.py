"""Time a no-op `dvc repro` (everything up to date) and count what DVC checks to decide so.

    python -m audioprobe.bench.noop [--repo .] [--repeats 3] [--top 8]

Target: <= 3 s on the embedded default on a 2-core laptop. Run it in a workspace where
`dvc repro` has finished; it refuses (one line, exit 1) when a stage is out of date,
because then `dvc repro` would run stages instead of timing the check.

One in-process `dvc status` is instrumented first and reports where a no-op's time goes:
- `file_states`: files whose (inode, mtime, size) DVC looks up in its state db. A
  directory dependency or output costs one per file, for EVERY stage listing it, so a
  big folder read by several stages should be listed through a small digest file that
  hashes its content (e.g. data/raw/<dataset>/source.json) rather than as a folder;
- `dirs`: the folders DVC walked, files x times walked (the biggest first);
- `yaml_parses` / `yaml_s`: YAML documents parsed (params.yaml once per stage with
  params, dvc.yaml, dvc.lock) and the seconds spent in them.
Then `dvc repro` runs `--repeats` times as a subprocess (the first, untimed, warms the
state db and the page cache), interleaved with the no-op of a one-stage reference
pipeline in a temp folder (DVC's own start-up: imports, repo, lock); the medians of wall
and CPU seconds of both and their ratio are reported. Timings are host-dependent and
inflated on a shared CPU (load average printed beside them; compare `ratio`, or the CPU
seconds, between runs on a busy box). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 3.0


def instrumented_status(repo_root: Path) -> dict:
    """Run `dvc status` in-process; return changed stages, file-state and YAML counts."""
    import dvc_data.hashfile.build as build
    import ruamel.yaml.main as ry
    from dvc.repo import Repo
    from dvc_data.hashfile.state import State

    walks: collections.Counter[str] = collections.Counter()
    nfiles: dict[str, int] = {}
    states = [0]
    yaml = {"parses": 0, "seconds": 0.0}
    orig_tree, orig_get_many, orig_load = build._build_tree, State.get_many, ry.YAML.load

    def build_tree(path, *args, **kwargs):
        meta, tree = orig_tree(path, *args, **kwargs)
        walks[os.path.relpath(path, repo_root)] += 1
        nfiles[os.path.relpath(path, repo_root)] = meta.nfiles or 0
        return meta, tree

    def get_many(self, items, fs, infos):
        items = list(items)
        states[0] += len(items)
        return orig_get_many(self, items, fs, infos)

    def load(self, stream):
        t0 = time.perf_counter()
        try:
            return orig_load(self, stream)
        finally:
            yaml["parses"] += 1
            yaml["seconds"] += time.perf_counter() - t0

    build._build_tree, State.get_many, ry.YAML.load = build_tree, get_many, load
    try:
        t0 = time.perf_counter()
        with Repo(str(repo_root)) as repo:
            changed = repo.status()
        seconds = time.perf_counter() - t0
    finally:
        build._build_tree, State.get_many, ry.YAML.load = orig_tree, orig_get_many, orig_load
    dirs = sorted(((p, nfiles[p], n) for p, n in walks.items()), key=lambda r: -r[1] * r[2])
    return {"changed": sorted(changed), "file_states": states[0], "dirs": dirs,
            "yaml_parses": yaml["parses"], "yaml_s": yaml["seconds"], "status_s": seconds}


def _dvc(*args: str) -> list[str]:
    dvc = Path(sys.executable).with_name("dvc")
    return [str(dvc) if dvc.exists() else "dvc", *args]


def _repro_once(root: Path) -> tuple[float, float]:
    """Run one `dvc repro` in root; return (wall, CPU) seconds; exit unless it was a no-op."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(_dvc("repro"), cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or "Running stage" in proc.stdout:
        sys.exit(f"error: `dvc repro` in {root} did not finish as a no-op (exit {proc.returncode}); "
                 f"run it to completion first: {(proc.stdout + proc.stderr).strip()[-300:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def reference_repo(root: Path) -> Path:
    """A one-stage DVC pipeline, already reproduced: DVC's fixed cost of a no-op."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    (root / "dvc.yaml").write_text("stages:\n  one:\n    cmd: python -c \"open('o.txt', 'w').write('1')\"\n"
                                   "    outs: [o.txt]\n")
    for cmd in (["git", "init", "-q"], _dvc("init", "-q"), _dvc("repro", "-q")):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    return root


def time_repro(repo_root: Path, reference: Path, repeats: int) -> dict[str, list[float]]:
    """Time 1 + repeats no-op `dvc repro` in repo_root and reference, interleaved (the first untimed)."""
    runs: dict[str, list[float]] = {"wall": [], "cpu": [], "ref_wall": [], "ref_cpu": []}
    for i in range(repeats + 1):
        wall, cpu = _repro_once(repo_root)
        ref_wall, ref_cpu = _repro_once(reference)
        if i:  # the first run warms the state db and the page cache
            for key, value in zip(runs, (wall, cpu, ref_wall, ref_cpu)):
                runs[key].append(value)
    return runs


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=Path("."), help="a DVC workspace where `dvc repro` is done")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=8, help="folders listed, the most file states first")
    args = ap.parse_args(argv)
    root = args.repo.resolve()
    if not (root / "dvc.yaml").is_file():
        sys.exit(f"error: {root}/dvc.yaml not found; pass --repo <workspace>")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")

    st = instrumented_status(root)
    if st["changed"]:
        shown = ", ".join(st["changed"][:5]) + (", ..." if len(st["changed"]) > 5 else "")
        sys.exit(f"error: {len(st['changed'])} stage(s) out of date ({shown}); "
                 f"run `dvc repro` first: this benchmark times a no-op")
    print(f"dvc status (in-process): {st['status_s']:.2f} s, {st['file_states']} file states, "
          f"{st['yaml_parses']} YAML parses ({st['yaml_s']:.2f} s)")
    for path, n, times in st["dirs"][: args.top]:
        print(f"  {n * times:7d} file states: {path} ({n} files x {times} walks)")

    with tempfile.TemporaryDirectory(prefix="noop-ref-") as tmp:
        runs = time_repro(root, reference_repo(Path(tmp)), args.repeats)
    load1 = os.getloadavg()[0]
    med = {key: statistics.median(values) for key, values in runs.items()}
    print(f"no-op dvc repro: median {med['wall']:.2f} s wall, {med['cpu']:.2f} s CPU over {args.repeats} runs; "
          f"one-stage reference {med['ref_wall']:.2f} s wall, {med['ref_cpu']:.2f} s CPU "
          f"(target <= {TARGET_S:.0f} s; load average {load1:.1f} on {os.cpu_count()} cores: "
          f"a shared CPU inflates these)")
    result = {"noop_repro_s": round(med["wall"], 3), "noop_repro_cpu_s": round(med["cpu"], 3),
              "reference_s": round(med["ref_wall"], 3), "reference_cpu_s": round(med["ref_cpu"], 3),
              "ratio": round(med["wall"] / med["ref_wall"], 2),
              "runs_s": [round(w, 3) for w in runs["wall"]], "target_s": TARGET_S,
              "file_states": st["file_states"], "dirs_walked": sum(t for _, _, t in st["dirs"]),
              "yaml_parses": st["yaml_parses"], "yaml_s": round(st["yaml_s"], 3),
              "load_avg_1m": round(load1, 2), "cpus": os.cpu_count()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
