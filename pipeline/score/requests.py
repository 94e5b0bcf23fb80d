"""Analyst requests to ``finsent classify``: a text scored for a target, and per company.

An input line is either one JSON object ``{"text": "...", "target": "Tesla"}`` or plain
text (scored as a whole, as always; also a line that starts with ``{`` but is not JSON).
Each input line gives exactly one output line: the whole text's ``label``,
``probabilities`` and ``score``; with a target,
``"target": {"mention", "ticker", "in_text", "label", "probabilities", "score"}`` for that target;
with ``entities``, every company the linker finds in the text, each scored for itself. A
line that is not a valid request gives ``{"line": N, "error": "..."}`` and the others are
still scored.

A target is resolved against the text and the company universe (see
:meth:`TargetResolver.resolve`); any span of the text can be a target and an unknown
target is never an error. Companies come from the configured universe
(``pipeline.companies``), read from files: no database.

A chunk of lines costs one model call: the whole texts and all their (text, target) pairs
go to ``SentimentClassifier.predict_targets`` together, so they share length-sorted
batches. An article-level model (``target_aware`` False) is not asked about targets at all:
its per-target answer would be the text's tone read through markers it never saw, so each
target and entity gets the text's own result, and one warning says so.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pipeline.score.target import mention_pattern, normalise_target

if TYPE_CHECKING:
    from pipeline.companies.linking import EntityMatch, TickerLinker
    from pipeline.companies.watchlist import Company, Watchlist
    from pipeline.score.classifier import SentimentClassifier, SentimentResult

__all__ = [
    "KEYS",
    "ChunkScorer",
    "Request",
    "RequestError",
    "ResolvedTarget",
    "TargetResolver",
    "find_span",
    "has_requests",
    "is_request_line",
    "parse_line",
]

logger = logging.getLogger(__name__)

#: The keys of a JSON request line.
KEYS = ("text", "target", "id")
EXAMPLE = '{"text": "...", "target": "Tesla"}'


class RequestError(ValueError):
    """A line that is not a valid request: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Request:
    text: str
    target: str | None = None  # normalised (whitespace collapsed); None: the whole text only
    # The caller's own key (a string or a number), echoed first in the output line so that
    # results join back to the input without counting lines; None: not given.
    id: str | int | float | None = None


@dataclass(frozen=True)
class ResolvedTarget:
    #: The span as written in the text; for a target the text does not contain, the name the
    #: model was asked about (the target as given, or a universe company's name for its ticker).
    mention: str
    ticker: str | None  # the universe's symbol (BRK.B, GOOGL), None for anything else
    #: Whether the text names the target. False: the model read it as a second segment and
    #: its label is a judgement about a company the text never mentions (often its tone).
    in_text: bool = True


def is_request_line(line: str) -> bool:
    """Whether a line may be a JSON request (it starts with ``{``); ``parse_line`` decides."""
    return line.lstrip().startswith("{")


def has_requests(lines: Sequence[str]) -> bool:
    return any(is_request_line(line) for line in lines)


def _type_name(value: Any) -> str:
    """A JSON value's type as JSON names it (bool before int: True is an int in Python)."""
    if value is None:
        return "null"
    named = {dict: "object", list: "array", bool: "boolean", str: "string"}.get(type(value))
    return named or ("number" if isinstance(value, int | float) else type(value).__name__)


_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_line(line: str) -> Request | None:
    """The request a line holds, or None for a blank line (which gives ``{}``).

    Plain text (anything that is not one JSON object) is the whole line, unchanged. Raises
    RequestError for a JSON object that is not a valid request.
    """
    if not line.strip():
        return None
    if not is_request_line(line):
        return Request(line)
    constants: list[str] = []
    try:
        obj = json.loads(line, parse_constant=lambda name: constants.append(name) or math.nan)
    except ValueError:
        # Not JSON: plain text that happens to start with "{" (a template, a code snippet),
        # scored as a whole as it always was. A broken request line is scored this way too,
        # which its output shows: no "target" key.
        return Request(line)
    except RecursionError:
        raise RequestError(
            f"JSON nested deeper than Python can read: a request is one flat object, e.g. {EXAMPLE}"
        ) from None
    if not isinstance(obj, dict):
        return Request(line)
    if constants:  # valid JSON apart from them: a request, which JSON cannot write back
        raise RequestError(f"{constants[0]} is not JSON: write numbers as numbers, or ids as strings")
    unknown = [key for key in obj if key not in KEYS]
    if unknown:
        raise RequestError(
            f'unknown key {unknown[0]!r}: a request has "text" and optionally "target" and "id", '
            f"e.g. {EXAMPLE}"
        )
    ident = obj.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int | float)):
        raise RequestError(f'"id" must be a string or a number, not {_type_name(ident)}')
    if isinstance(ident, float) and not math.isfinite(ident):
        raise RequestError(f'"id" {ident} is not a number JSON can write back: use a string')
    for key in ("text", "target", "id"):
        value = obj.get(key)
        if isinstance(value, str) and _SURROGATE.search(value):
            # "\ud800" alone is valid JSON but no character: it cannot be tokenised or
            # written back as UTF-8.
            raise RequestError(f'"{key}" holds a lone surrogate escape (\\ud800-\\udfff): fix its encoding')
    if "text" not in obj:
        raise RequestError(f'"text" is missing: give the text to score, e.g. {EXAMPLE}')
    text = obj["text"]
    if not isinstance(text, str):
        raise RequestError(f'"text" must be a string, not {_type_name(text)}')
    if not text.strip():
        raise RequestError('"text" is blank: give the text to score')
    target = obj.get("target")
    if target is None:
        return Request(text, None, ident)
    if not isinstance(target, str):
        raise RequestError(
            f'"target" must be a string (a company, a ticker or any span of the text), '
            f"not {_type_name(target)}"
        )
    normalised = normalise_target(target)
    if normalised is None:
        raise RequestError(
            '"target" is blank: name a company, a ticker or another span of the text, '
            'or leave "target" out to score the whole text'
        )
    return Request(text, normalised, ident)


def find_span(text: str, needle: str) -> str | None:
    """The first whole-word, case-insensitive occurrence of ``needle`` in ``text``, as
    written there (the same rule the target markers use: any whitespace between its
    words), or None.

    Apostrophes match either form, so the linker's "Lowe's" finds "Lowe’s" in the text.
    """
    # Folding ’ to ' keeps every offset, so the match is cut from the text as written.
    folded, wanted = text.replace("\u2019", "'"), needle.replace("\u2019", "'")
    # Most calls look for what is not there: substring tests cost far less than a regex.
    lowered = folded.lower()
    words = wanted.lower().split()
    if not words or not all(word in lowered for word in words):
        return None
    match = re.search(rf"(?<!\w){mention_pattern(wanted)}(?!\w)", folded, re.IGNORECASE)
    return text[match.start() : match.end()] if match else None


def _as_written(text: str, mention: str) -> str:
    """A linker mention as the text writes it: the linker reads ’ as ', same offsets."""
    if mention in text:
        return mention
    at = text.replace("\u2019", "'").find(mention)
    return text[at : at + len(mention)] if at >= 0 else mention


def _keys(target: str) -> set[str]:
    """Spellings of a target that name the same thing: case, a cashtag's $, BRK-B for BRK.B."""
    low = target.lower().replace("\u2019", "'")
    return {low, low.lstrip("$"), low.lstrip("$").replace("-", ".")}


def _short_name(company: Company) -> str:
    """The name the press writes ("Tesla" for "Tesla, Inc.")."""
    names = [text for text, how in company.names() if how == "name"]
    return names[-1]


class TargetResolver:
    """Resolves targets and links companies against one universe. Build once per run."""

    def __init__(self, universe: Watchlist) -> None:
        from pipeline.companies.linking import TickerLinker

        self.universe = universe
        self.linker: TickerLinker = TickerLinker(universe)
        self._names_cache: dict[str, frozenset[str]] = {}

    @cached_property
    def _by_name(self) -> dict[str, str]:
        """Lower-cased name or alias -> ticker, for names that belong to one company only."""
        owners: dict[str, set[str]] = {}
        for company in self.universe.companies:
            for text, _ in company.names():
                owners.setdefault(text.lower().replace("\u2019", "'"), set()).add(company.ticker)
        return {name: next(iter(t)) for name, t in owners.items() if len(t) == 1}

    def link(self, text: str) -> list[EntityMatch]:
        return self.linker.link(text)

    def _company_names(self, ticker: str) -> frozenset[str]:
        """A company's names, aliases and tickers, lower-cased (built once per company)."""
        names = self._names_cache.get(ticker)
        if names is None:
            company = self.universe.company(ticker)
            found = {ticker.lower()}
            if company is not None:
                found.update(text.lower().replace("\u2019", "'") for text, _ in company.names())
                found.update(t.lower() for t in company.tickers())
            names = self._names_cache[ticker] = frozenset(found)
        return names

    def _names_of(self, match: EntityMatch) -> set[str]:
        """Every spelling that names a linked company: its names, aliases, tickers, mention."""
        return {*self._company_names(match.ticker), match.mention.lower().replace("\u2019", "'")}

    def _is_ticker_of(self, target: str, match: EntityMatch) -> bool:
        """Whether ``target`` is written as one of the linked company's tickers (TSLA, $TSLA,
        BRK-B), not as a name that happens to share its letters ("Meta")."""
        company = self.universe.company(match.ticker)
        tickers = company.tickers() if company is not None else (match.ticker,)
        bare = target.lstrip("$")
        return bare in tickers or bare.replace("-", ".") in tickers

    def _universe_company(self, target: str) -> Company | None:
        """The universe company a target names by ticker (as the universe writes it: TSLA,
        BRK.B or BRK-B, $TSLA) or by one of its names, or None."""
        bare = target.lstrip("$")
        if bare == bare.upper():
            for ticker in (bare, bare.replace("-", ".")):
                company = self.universe.company(ticker)
                if company is not None:
                    return company
        for key in _keys(target):
            ticker = self._by_name.get(key)
            if ticker is not None:
                return self.universe.company(ticker)
        return None

    def resolve(self, text: str, target: str, matches: Sequence[EntityMatch]) -> ResolvedTarget:
        """What ``target`` means in ``text``, given the companies linked in it.

        In this order:

        1. a company the linker found in the text, named by the target (a mention, name,
           alias or ticker: "Tesla", "TSLA", "Alphabet" for a text saying "Google"): its
           ticker, and as the mention the target as written in the text, or for a ticker or
           a name the text does not contain, the linker's mention ("Berkshire Hathaway");
        2. a span of the text the linker did not take for a company ("the Dow", "oil",
           "apple" in "apple harvest", a private company): the span, ticker None;
        3. a universe company (by ticker or name) that the text does not name: its ticker,
           and its name as the mention (the model reads it as a second segment);
        4. anything else: the target as given, ticker None (a second segment too).
        """
        span = find_span(text, target)
        keys = _keys(target)
        for match in matches:
            if keys & self._names_of(match):
                # A ticker is resolved to the company's mention (what the linker and
                # --entities mark: "Berkshire Hathaway" for BRK.B); a name as written stays.
                mention = None if self._is_ticker_of(target, match) else span
                mention = mention or _as_written(text, match.mention)
                return ResolvedTarget(mention, match.ticker)
        if span is not None:
            return ResolvedTarget(span, None)
        company = self._universe_company(target)
        if company is not None:
            for name, _ in company.names():
                found = find_span(text, name)
                if found is not None:
                    return ResolvedTarget(found, company.ticker)
            return ResolvedTarget(_short_name(company), company.ticker, in_text=False)
        return ResolvedTarget(target, None, in_text=False)


def _scores(result: SentimentResult) -> dict[str, Any]:
    return {"label": result.label, "probabilities": result.probabilities, "score": result.score}


@dataclass
class _Line:
    """One scored line while its chunk is assembled: where its results will be."""

    text_row: int
    target: ResolvedTarget | None = None
    target_row: int = -1
    entities: list[tuple[EntityMatch, str, int]] | None = None  # (match, mention, row)
    id: str | int | float | None = None  # the request's own key, echoed


class ChunkScorer:
    """Scores chunks of classify's input lines that hold requests (or with ``entities``).

    ``universe``: called once, at the first target or with ``entities``, for the company
    universe (the CLI reads it from settings). ``warn``: where the one-line warnings go.
    ``error_lines`` collects the numbers of the lines that were not valid requests.
    """

    def __init__(
        self,
        clf: SentimentClassifier,
        universe: Callable[[], Watchlist],
        *,
        entities: bool = False,
        warn: Callable[[str], None] = logger.warning,
    ) -> None:
        self.clf = clf
        self.entities = entities
        self.error_lines: list[int] = []
        # Lines that start with "{" but are not JSON, scored as plain text: most likely a
        # request cut or mistyped, so the caller is told (a warning, not an error: a text may
        # start with a brace).
        self.plain_brace_lines: list[int] = []
        self._universe = universe
        self._resolver: TargetResolver | None = None
        self._warn = warn
        self._warned = False

    @property
    def resolver(self) -> TargetResolver:
        if self._resolver is None:
            self._resolver = TargetResolver(self._universe())
        return self._resolver

    def _article_level_warning(self) -> None:
        if self._warned or self.clf.target_aware:
            return
        self._warned = True
        self._warn(
            f"finsent classify: warning: model {self.clf.model_version} is article-level: per-target "
            "labels are the text's tone; use a target-aware model (a folder with target.json, see "
            "docs/model-target-aware.md) for each company's own sentiment"
        )

    def score(self, chunk: Sequence[str], first_line: int) -> list[str]:
        """One JSON line per input line of ``chunk`` (``first_line``: the number of its first)."""
        texts: list[str] = []
        pair_rows: dict[tuple[int, str], int] = {}  # (text row, model target) -> pair index
        pairs: list[tuple[int, str]] = []
        plan: list[_Line | str] = []  # a _Line, or the finished output line

        def pair(text_row: int, query: str) -> int:
            # The same (text, target) asked twice (a target that is also an entity) costs once.
            key = (text_row, query)
            if key not in pair_rows:
                pair_rows[key] = len(pairs)
                pairs.append(key)
            return pair_rows[key]

        for offset, line in enumerate(chunk):
            try:
                request = parse_line(line)
            except RequestError as exc:
                self.error_lines.append(first_line + offset)
                plan.append(json.dumps({"line": first_line + offset, "error": str(exc)}))
                continue
            if request is None:
                plan.append("{}")
                continue
            if request.text == line and is_request_line(line):  # a request's text never is its line
                self.plain_brace_lines.append(first_line + offset)
            item = _Line(len(texts))
            item.id = request.id
            texts.append(request.text)
            matches: list[EntityMatch] | None = None
            if request.target is not None or self.entities:
                self._article_level_warning()
                matches = self.resolver.link(request.text)
            if request.target is not None:
                item.target = self.resolver.resolve(request.text, request.target, matches or [])
                item.target_row = pair(item.text_row, item.target.mention)
            if self.entities:
                item.entities = []
                for match in matches or []:
                    mention = _as_written(request.text, match.mention)
                    item.entities.append((match, mention, pair(item.text_row, mention)))
            plan.append(item)

        if self.clf.target_aware and pairs:
            results = self.clf.predict_targets(
                [*texts, *(texts[row] for row, _ in pairs)],
                [*([None] * len(texts)), *(query for _, query in pairs)],
            )
            whole, targeted = results[: len(texts)], results[len(texts) :]
        else:
            whole = self.clf.predict(texts) if texts else []
            # Article-level: each target gets its text's own result (see the module docstring).
            targeted = [whole[row] for row, _ in pairs]
        return [entry if isinstance(entry, str) else self._record(entry, whole, targeted) for entry in plan]

    @staticmethod
    def _record(item: _Line, whole: Sequence[SentimentResult], targeted: Sequence[SentimentResult]) -> str:
        record: dict[str, Any] = {} if item.id is None else {"id": item.id}
        record.update(_scores(whole[item.text_row]))
        if item.target is not None:
            record["target"] = {
                "mention": item.target.mention,
                "ticker": item.target.ticker,
                "in_text": item.target.in_text,
                **_scores(targeted[item.target_row]),
            }
        if item.entities is not None:
            record["entities"] = [
                {
                    "ticker": match.ticker,
                    "name": match.company,
                    "mention": mention,
                    "relevance": match.relevance,
                    **_scores(targeted[row]),
                }
                for match, mention, row in item.entities
            ]
        try:
            return json.dumps(record, allow_nan=False)
        except ValueError:  # NaN or infinity: not JSON, and no verdict
            from pipeline.score.json_lines import non_finite_error

            raise non_finite_error(item.text_row) from None

    def plain_text_warning(self) -> str | None:
        """One line for stderr naming the lines that start with ``{`` but were read as plain
        text (not JSON), or None."""
        if not self.plain_brace_lines:
            return None
        return (
            f"finsent classify: warning: {len(self.plain_brace_lines)} line(s) start with {{ but are "
            f"not JSON (line {_line_list(self.plain_brace_lines)}): scored as plain text, with no "
            '"target"; fix the JSON to make such a line a request'
        )

    def error_summary(self) -> str | None:
        """One line for stderr naming the lines that were not valid requests, or None."""
        if not self.error_lines:
            return None
        bad = self.error_lines
        shown = _line_list(bad)
        return (
            f"finsent classify: {len(bad)} input line(s) were not valid requests (line {shown}): "
            'their output lines hold {"line", "error"} saying what to fix; every other line was scored'
        )


def _line_list(numbers: Sequence[int], shown: int = 10) -> str:
    """Line numbers for a one-line message: the first ``shown``, then how many more."""
    more = f" and {len(numbers) - shown} more" if len(numbers) > shown else ""
    return ", ".join(map(str, numbers[:shown])) + more
