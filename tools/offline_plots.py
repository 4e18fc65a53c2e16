"""Write ``.dvc/plots/offline.html``: DVC's plots page with vega, vega-lite and vega-embed inside it, so that
``dvc plots show`` draws offline (DVC's own page loads them from a CDN). ``.dvc/config`` names the file as
``plots.html_template``.

Usage (npm ships the libraries; the versions are the ones DVC's page asks its CDN for):
    python tools/offline_plots.py            # runs `npm pack` in a temporary folder
    python tools/offline_plots.py --packs DIR  # uses vega-*.tgz files already in DIR
"""

from __future__ import annotations

import argparse
import subprocess
import tarfile
import tempfile
from pathlib import Path

LIBRARIES = {  # npm package: (version, the built file inside its tarball)
    "vega": ("5.20.2", "package/build/vega.min.js"),
    "vega-lite": ("5.2.0", "package/build/vega-lite.min.js"),
    "vega-embed": ("6.18.2", "package/build/vega-embed.min.js"),
}
TEMPLATE = Path(__file__).resolve().parents[1] / ".dvc" / "plots" / "offline.html"
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # what DVC replaces in the page

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- written by tools/offline_plots.py: {libraries}, inside this page so that it draws without internet.
{licenses}
    -->
{bundles}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def script(package: str, version: str, source: str) -> str:
    """One library as an inline script, refusing text DVC would replace."""
    for placeholder in PLACEHOLDERS:
        if placeholder in source:
            raise ValueError(f"{package} {version} contains {placeholder}, which DVC would replace")
    safe = source.replace("</script", "<\\/script")  # never ends the script element early
    return f"    <script>/* {package}@{version} */\n{safe}\n    </script>"


def read_packs(folder: Path) -> dict[str, tuple[str, str]]:
    """The built file and the licence of each library, from ``<package>-<version>.tgz`` in ``folder``."""
    sources = {}
    for package, (version, member) in LIBRARIES.items():
        with tarfile.open(folder / f"{package}-{version}.tgz") as pack:
            texts = []
            for name in (member, "package/LICENSE"):
                extracted = pack.extractfile(name)
                if extracted is None:
                    raise FileNotFoundError(f"{name} in {package}-{version}.tgz")
                texts.append(extracted.read().decode("utf-8"))
            sources[package] = (texts[0], texts[1].replace("--", "- -"))
    return sources


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--packs", type=Path, help="a folder with the npm tarballs (default: npm pack them)")
    args = cli.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.packs
        if folder is None:
            folder = Path(scratch)
            packages = [f"{name}@{version}" for name, (version, _) in LIBRARIES.items()]
            subprocess.run(["npm", "pack", "--silent", *packages], cwd=folder, check=True, capture_output=True)
        sources = read_packs(folder)
    bundles = "\n".join(script(name, LIBRARIES[name][0], text) for name, (text, _) in sources.items())
    licenses = "\n".join(f"    {name} (BSD-3-Clause):\n{licence}" for name, (_, licence) in sources.items())
    libraries = ", ".join(f"{name}@{version}" for name, (version, _) in LIBRARIES.items())
    page = PAGE.replace("{{", "{").replace("}}", "}").replace("{libraries}", libraries)
    page = page.replace("{licenses}", licenses).replace("{bundles}", bundles)
    TEMPLATE.write_text(page, encoding="utf-8")
    print(f"wrote {TEMPLATE} ({TEMPLATE.stat().st_size // 1024} KiB: {libraries})")


if __name__ == "__main__":
    main()
