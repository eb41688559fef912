"""HTML-only mail as readable text: block elements become lines, scripts and styles vanish, and
what a <blockquote> quotes becomes "> " lines, so quoted HTML is as inert as quoted text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
           "pre", "table", "ul", "ol", "hr", "section", "article", "header", "footer"}
_HIDDEN = {"script", "style", "head", "title", "template", "noscript"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0
        self.quote_depth = 0  # inside <blockquote>: every line is marked quoted ("> ")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden_depth += 1
        elif tag in _BLOCKS:
            self.quote_depth += tag == "blockquote"
            self.parts.append(self._newline)
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden_depth = max(0, self.hidden_depth - 1)
        elif tag in _BLOCKS:
            self.quote_depth = max(0, self.quote_depth - (tag == "blockquote"))
            self.parts.append(self._newline)

    @property
    def _newline(self) -> str:
        return "\n> " if self.quote_depth else "\n"

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(data.replace("\n", self._newline) if self.quote_depth else data)


def html_to_text(html: str) -> str:
    """Plain text of ``html``; never raises on malformed markup."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts).replace("\xa0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
