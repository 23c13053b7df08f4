"""Check the internal links of a built HTML site: every relative ``href``/``src`` names a file of the site, and
every ``#fragment`` an ``id`` (or ``name``) in the page it points to. External links (``http:``, ``mailto:``,
...) are not followed: CI has no network.

    python docs/check_links.py docs/_build/html        # exit 1 and one line per broken link, 0 when all hold
"""

from __future__ import annotations

import argparse
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["broken_links", "main"]

#: Attributes that hold a URL, per tag (``<link href>`` covers style sheets, ``<script src>`` scripts).
_URL_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src", "source": "src"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if d.get(key):
                self.ids.add(d[key])
        url = d.get(_URL_ATTRS.get(tag, ""))
        if url:
            self.links.append((self.getpos()[0], url))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    page.close()
    return page


def broken_links(site: Path) -> list[str]:
    """One line per broken internal link of the HTML files under ``site``: ``page:line: url (why)``."""
    site = Path(site)
    if not site.is_dir():
        raise FileNotFoundError(f"{site}: no such folder (build the site first: make docs)")
    # the pages; _static/ holds the theme's files, some of them HTML templates (not pages), linked to only
    pages = {p.resolve(): _parse(p) for p in sorted(site.rglob("*.html"))
             if "_static" not in p.relative_to(site).parts}
    if not pages:
        raise FileNotFoundError(f"{site}: no HTML files")
    root = site.resolve()
    out = []
    for path, page in pages.items():
        for line, url in page.links:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            where = f"{path.relative_to(root)}:{line}: {url}"
            if not target.is_relative_to(root):
                out.append(f"{where} (outside the site)")
            elif target.is_dir():
                if not (target / "index.html").is_file():
                    out.append(f"{where} (a folder without index.html)")
            elif not target.is_file():
                out.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    out.append(f"{where} (no anchor #{parts.fragment} in {target.relative_to(root)})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="folder of the built HTML site (docs/_build/html)")
    args = parser.parse_args(argv)
    try:
        broken = broken_links(args.site)
    except FileNotFoundError as exc:
        print(f"check_links: error: {exc}", file=sys.stderr)
        return 2
    for line in broken:
        print(line)
    print(f"check_links: {len(broken)} broken internal links", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
