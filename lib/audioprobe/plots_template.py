"""An HTML template for `dvc plots show` with Vega inlined, so plots render with no network.

DVC's default template loads vega, vega-lite and vega-embed from a CDN and renders a
blank page offline; the vl-convert-python wheel ships the same libraries as one bundle.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_PATH = Path(".dvc/offline_plots.html")


def render() -> str:
    """Return the template text; DVC substitutes `{plot_divs}`."""
    import vl_convert

    # The default bundle assigns vegaEmbed, vegaLite and vega to window synchronously,
    # before DVC's per-plot <script> tags call vegaEmbed.
    bundle = vl_convert.javascript_bundle()
    if "{plot_divs}" in bundle or "</script" in bundle:
        raise RuntimeError("vl-convert bundle contains text that would break the template")
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>audioprobe plots</title>\n"
        f"<script>\n{bundle}\n</script>\n</head>\n<body>\n{{plot_divs}}\n</body>\n</html>\n"
    )


def write(path: Path = TEMPLATE_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path
