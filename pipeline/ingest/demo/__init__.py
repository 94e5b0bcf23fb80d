"""The bundled demo: five fictional publishers, twelve fictional companies, three days of
news and a burst of negative headlines about one of them (Voltara Motors, VLTA) in the
hour before ``now``. Two burst stories name another company: one in its favour ("Voltara
Motors slumps ... while chip supplier Northwind Semiconductor gains"), one in passing
(Aerowind Airlines, late in a long summary): company-level sentiment and relevance keep
both out of the Voltara alert and out of alerts of their own.

``stories.csv`` holds the stories with their age in minutes and the publishers that ran
them (several for syndicated stories); :func:`prepare_demo` renders them once into RSS
2.0 and Atom files under ``<data_dir>/demo/`` with dates relative to ``now`` and reuses
those files afterwards, so a second run finds only duplicates.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from html import escape
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

BURST_TICKER = "VLTA"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Publisher:
    key: str
    title: str
    domain: str
    format: str  # rss | atom
    language: str = "en-us"


PUBLISHERS = (
    Publisher("marketwire", "MarketWire Financial News", "marketwire.example.com", "rss"),
    Publisher("streetledger", "The Street Ledger: Markets", "streetledger.example.com", "atom"),
    Publisher("financedaily", "Finance Daily Top Stories", "financedaily.example.net", "rss"),
    Publisher("bizwire", "Business Newswire: Press Releases", "bizwire.example.com", "rss"),
    Publisher("capitaltimes", "Capital Times Companies", "capitaltimes.example.org", "atom", "en-gb"),
)


def feed_file_name(pub: Publisher) -> str:
    """The file a publisher's feed is rendered to in a data dir's ``demo`` folder."""
    return f"{pub.key}.{'rss' if pub.format == 'rss' else 'atom'}"


#: The demo's feed files, by name (what `feeds remove --demo` recognises, from any data dir).
FEED_FILE_NAMES = tuple(feed_file_name(pub) for pub in PUBLISHERS)


@dataclass(frozen=True)
class Story:
    minutes_ago: int
    ticker: str
    publishers: tuple[str, ...]
    title: str
    summary: str

    @property
    def slug(self) -> str:
        words = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")
        return words[:60].rstrip("-")

    @property
    def story_id(self) -> str:
        return hashlib.sha1(self.title.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class DemoBundle:
    feed_paths: list[Path]
    watchlist: Path
    rendered_at: datetime


def _data(name: str):
    return resources.files(__package__).joinpath(name)


def bundled_watchlist():
    """The demo's watchlist as packaged (a context manager yielding its path), for commands
    that show what ``finsent run --demo`` links without rendering the demo."""
    return resources.as_file(_data("watchlist.csv"))


def load_stories() -> list[Story]:
    with _data("stories.csv").open("r", encoding="utf-8", newline="") as fh:
        return [
            Story(
                int(row["minutes_ago"]),
                row["ticker"],
                tuple(row["publishers"].split("|")),
                row["title"],
                row["summary"],
            )
            for row in csv.DictReader(fh)
        ]


def _link(pub: Publisher, story: Story) -> str:
    # Tracking parameters, as real feeds carry them: canonicalisation must drop them.
    return f"https://{pub.domain}/news/{story.slug}-{story.story_id}?utm_source=rss&utm_medium=feed"


def _render_rss(pub: Publisher, stories: list[Story], now: datetime) -> str:
    items = []
    for s in stories:
        when = format_datetime(now - timedelta(minutes=s.minutes_ago), usegmt=True)
        # Descriptions carry HTML, entity-encoded as RSS does: normalisation strips it.
        summary = f"<p>{escape(s.summary)}</p>" if s.summary else ""
        items.append(
            "    <item>\n"
            f"      <title>{escape(s.title)}</title>\n"
            f"      <link>{escape(_link(pub, s))}</link>\n"
            f'      <guid isPermaLink="false">{pub.key}-{s.story_id}</guid>\n'
            f"      <pubDate>{when}</pubDate>\n"
            f"      <description>{escape(summary)}</description>\n"
            "    </item>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n  <channel>\n'
        f"    <title>{escape(pub.title)}</title>\n    <link>https://{pub.domain}/</link>\n"
        f"    <description>{escape(pub.title)} (FinSent demo; fictional companies)</description>\n"
        f"    <language>{pub.language}</language>\n"
        f"    <lastBuildDate>{format_datetime(now, usegmt=True)}</lastBuildDate>\n"
        + "".join(items)
        + "  </channel>\n</rss>\n"
    )


def _render_atom(pub: Publisher, stories: list[Story], now: datetime) -> str:
    def iso(when: datetime) -> str:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")

    entries = []
    for s in stories:
        when = iso(now - timedelta(minutes=s.minutes_ago))
        entries.append(
            "  <entry>\n"
            f"    <id>tag:{pub.domain},2026:{s.story_id}</id>\n"
            f"    <title>{escape(s.title)}</title>\n"
            f'    <link rel="alternate" href="{escape(_link(pub, s))}"/>\n'
            f"    <published>{when}</published>\n    <updated>{when}</updated>\n"
            f"    <summary>{escape(s.summary)}</summary>\n"
            "  </entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{pub.language}">\n'
        f"  <title>{escape(pub.title)}</title>\n  <id>tag:{pub.domain},2026:feed</id>\n"
        f'  <link rel="alternate" href="https://{pub.domain}/"/>\n'
        f"  <updated>{iso(now)}</updated>\n" + "".join(entries) + "</feed>\n"
    )


def _existing(target: Path) -> DemoBundle | None:
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        paths = [target / name for name in manifest["feeds"]]
        watchlist = target / manifest["watchlist"]
        rendered_at = datetime.fromisoformat(manifest["rendered_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if all(p.is_file() for p in paths) and watchlist.is_file():
        return DemoBundle(paths, watchlist, rendered_at)
    return None


def prepare_demo(data_dir: Path, now: datetime) -> DemoBundle:
    """The demo feeds and watchlist under ``data_dir/demo`` (rendered on first use)."""
    target = Path(data_dir) / "demo"
    found = _existing(target)
    if found is not None:
        return found
    now = now.replace(second=0, microsecond=0)
    stories = load_stories()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Render into a scratch folder and move it into place: a crash never leaves half a demo.
    scratch = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
    names = []
    for pub in PUBLISHERS:
        mine = [s for s in stories if pub.key in s.publishers]
        render = _render_rss if pub.format == "rss" else _render_atom
        name = feed_file_name(pub)
        (scratch / name).write_text(render(pub, mine, now), encoding="utf-8")
        names.append(name)
    with _data("watchlist.csv").open("rb") as src, (scratch / "watchlist.csv").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    manifest = {"feeds": names, "watchlist": "watchlist.csv", "rendered_at": now.isoformat()}
    (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2))
    if target.exists():  # a broken earlier attempt
        shutil.rmtree(target)
    scratch.rename(target)
    log.info("demo feeds rendered into %s (news up to %s)", target, now.isoformat())
    return DemoBundle([target / n for n in names], target / "watchlist.csv", now)
