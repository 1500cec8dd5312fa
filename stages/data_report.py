"""data_report: summarise every dataset (headline in metrics/data.json, detail in plots/data/)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
import typer  # noqa: E402

from audioprobe.runtime import params  # noqa: E402
from audioprobe.runtime.atomic import atomic_file, write_csv, write_json  # noqa: E402
from audioprobe.data.layout import DATASETS  # noqa: E402
from audioprobe.data.summary import headline_values, summarise  # noqa: E402
from audioprobe.runtime.headline import SYNTHETIC_BANNER  # noqa: E402
from stages._run import run  # noqa: E402

app = typer.Typer(add_completion=False)


@app.command()
def main(
    raw: Path = typer.Option(Path("data/raw")),
    metrics: Path = typer.Option(Path("metrics/data.json")),
    plots: Path = typer.Option(Path("plots/data/report")),
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
) -> None:
    cfg = params.load_group("data_report", params_file)
    flat, detail, frames = {}, {}, []
    for name in DATASETS:
        m, dur = summarise(name, raw / name, params_file)
        flat.update(m)
        detail[name] = {k.split(".", 1)[1]: v for k, v in m.items()}
        frames.append(pl.DataFrame({"dataset": [name] * len(dur), "seconds": dur}))
    table = pl.concat(frames)
    write_csv(plots / "durations.csv", table)
    fig, axes = plt.subplots(2, 3, figsize=(9.6, 5.6))
    axes = axes.ravel()
    axes[-1].set_visible(False)
    for ax, name in zip(axes, DATASETS):
        ax.hist(table.filter(pl.col("dataset") == name)["seconds"].to_numpy(), bins=cfg.hist_bins)
        ax.set_title(f"{name} ({flat[f'{name}.source']})", fontsize=9)
        ax.set_xlabel("seconds")
    for ax in axes[::3]:
        ax.set_ylabel("clips")
    if any(d["source"] == "embedded" for d in detail.values()):
        fig.suptitle(f"clip durations per dataset ({SYNTHETIC_BANNER})", fontsize=10)
    fig.tight_layout()
    with atomic_file(plots / "durations.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    write_json(plots / "summary.json", detail)
    write_json(metrics, headline_values(detail))
    typer.echo(" ".join(f"{n}={flat[f'{n}.clips']}" for n in DATASETS))


if __name__ == "__main__":
    run(app)
