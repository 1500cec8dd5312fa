"""An HTML template for `dvc plots show` with Vega inlined, so plots render with no network.

DVC's default template loads vega, vega-lite and vega-embed from a CDN and renders a
blank page offline; the vl-convert-python wheel ships the same libraries as one bundle.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_PATH = Path(".dvc/offline_plots.html")
# The inlined bundle keeps its own licences; their full texts are in the repository's LICENSE.
NOTICE = (
    "Inlined below: the vl-convert-python JavaScript bundle ({versions}) and the d3 modules "
    "it is built on. Vega, Vega-Lite and vega-embed: BSD 3-Clause, Copyright (c) 2015-2023 "
    "University of Washington Interactive Data Lab. d3: ISC, Copyright 2010-2023 Mike Bostock. "
    "vl-convert: BSD 3-Clause, Copyright 2023 Jon Mease. Licence texts: LICENSE."
)
# DVC puts each PNG at its natural size in a box with `white-space: nowrap`: a figure
# wider than the window (the detect lane's one-panel-per-method rows) overflowed its box
# and was cut at the right edge. Scale images down to the box; let a wide Vega chart
# scroll inside its own box instead of widening the page.
STYLE = (
    "<style>\n"
    "body { margin: 8px; }\n"
    "img { max-width: 100%; height: auto; }\n"
    "div[style*=\"inline-block\"] { max-width: calc(100% - 16px); box-sizing: border-box; }\n"
    ".vega-embed { max-width: 100%; overflow-x: auto; }\n"
    "</style>\n"
)


def render() -> str:
    """Return the template text; DVC substitutes `{plot_divs}`."""
    import vl_convert

    # The default bundle assigns vegaEmbed, vegaLite and vega to window synchronously,
    # before DVC's per-plot <script> tags call vegaEmbed.
    bundle = vl_convert.javascript_bundle()
    if "{plot_divs}" in bundle or "</script" in bundle:
        raise RuntimeError("vl-convert bundle contains text that would break the template")
    versions = (f"Vega {vl_convert.get_vega_version()}, Vega-Lite {vl_convert.get_vegalite_versions()[-1]}, "
                f"vega-embed {vl_convert.get_vega_embed_version()}")
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>audioprobe plots</title>\n"
        f"<!-- {NOTICE.format(versions=versions)} -->\n"
        f"<script>\n{bundle}\n</script>\n{STYLE}</head>\n<body>\n{{plot_divs}}\n</body>\n</html>\n"
    )


def write(path: Path = TEMPLATE_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    return path
