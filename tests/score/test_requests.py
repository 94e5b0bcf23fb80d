"""`finsent classify` for analysts: JSON request lines with a target, --entities, per-line errors.

The request module on its own (parsing, target resolution against the bundled universe,
one model call per chunk), then the command end to end on tiny random models: an
article-level one (no target.json) and the same weights marked target-aware. No database:
FINSENT_DATABASE_URL points nowhere in every command test.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from score_helpers import tiny_model_folder

from pipeline.cli.sentiment import classify_cmd
from pipeline.companies.universe import load_universe
from pipeline.score.requests import (
    ChunkScorer,
    Request,
    RequestError,
    ResolvedTarget,
    TargetResolver,
    find_span,
    parse_line,
)
from pipeline.score.target import write_target_style

TESLA_FORD = "Tesla shares jump after record deliveries, while Ford slumps on recall"
BERKSHIRE = "Berkshire Hathaway (BRK.B) raises its stake in Occidental"
NO_COMPANY = "Oil prices climb as OPEC cuts output"
NOWHERE = "postgresql://nobody@127.0.0.1:1/no_database"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # uncalibrated, one layer; its head tells inputs apart, so marked targets score apart
    out = tmp_path_factory.mktemp("requests") / "tiny-article"
    return tiny_model_folder(out, layers=1, temperature=None)


@pytest.fixture(scope="module")
def aware_model(tiny_model: Path) -> Path:
    out = tiny_model.parent / "tiny-aware"
    shutil.copytree(tiny_model, out)
    write_target_style(out)
    return out


@pytest.fixture(scope="module")
def resolver() -> TargetResolver:
    return TargetResolver(load_universe("sp500"))


@pytest.fixture
def no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment of an analyst's laptop: no database, the default universe."""
    monkeypatch.setenv("FINSENT_DATABASE_URL", NOWHERE)
    monkeypatch.setenv("FINSENT_CONFIG", str(tmp_path / "no-config.toml"))
    (tmp_path / "no-config.toml").write_text("")
    for name in ("FINSENT_UNIVERSE", "FINSENT_WATCHLIST_PATH", "FINSENT_MODEL_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def classify(model: Path, lines: list[str], *args: str):
    result = CliRunner().invoke(
        classify_cmd, ["--model", str(model), "--precision", "fp32", *args], input="\n".join(lines) + "\n"
    )
    return result, [json.loads(line) for line in result.stdout.splitlines()]


# -- parsing ------------------------------------------------------------------------------


def test_plain_and_blank_lines_parse_as_today() -> None:
    assert parse_line("  Shares jump  ") == Request("  Shares jump  ")
    assert parse_line("   ") is None
    assert parse_line("[1, 2] is plain text") == Request("[1, 2] is plain text")


def test_json_lines_parse_to_requests() -> None:
    assert parse_line(json.dumps({"text": TESLA_FORD, "target": " Ford  Motor "})) == Request(
        TESLA_FORD, "Ford Motor"
    )
    assert parse_line(json.dumps({"text": TESLA_FORD})) == Request(TESLA_FORD)
    assert parse_line(json.dumps({"text": TESLA_FORD, "target": None})) == Request(TESLA_FORD)
    # The caller's own key comes back with the result.
    assert parse_line(json.dumps({"id": "r-7", "text": TESLA_FORD})) == Request(TESLA_FORD, None, "r-7")
    assert parse_line(json.dumps({"id": 12, "text": TESLA_FORD, "target": "Ford"})).id == 12
    with pytest.raises(RequestError, match='"id" must be a string or a number, not object'):
        parse_line(json.dumps({"id": {"a": 1}, "text": TESLA_FORD}))


def test_a_request_that_cannot_be_scored_costs_only_its_own_line(tiny_model: Path) -> None:
    lines = ["Tesla jumps", '{"text": "abc \\ud800 def"}', '{"text": ' + "[" * 100_000 + "}", "Ford slumps"]
    result = CliRunner().invoke(classify_cmd, ["--model", str(tiny_model)], input="\n".join(lines) + "\n")
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1
    assert [sorted(o) for o in out] == [
        ["label", "probabilities", "score"],
        ["error", "line"],
        ["error", "line"],
        ["label", "probabilities", "score"],
    ]


def test_the_id_is_echoed_first_in_the_output_line(tiny_model: Path) -> None:
    from pipeline.score.classifier import SentimentClassifier

    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    scorer = ChunkScorer(clf, lambda: load_universe("sp500"), warn=lambda _: None)
    lines = scorer.score([json.dumps({"id": "a1", "text": TESLA_FORD, "target": "Ford"}), TESLA_FORD], 1)
    first, second = (json.loads(line) for line in lines)
    assert next(iter(first)) == "id" and first["id"] == "a1" and first["target"]["mention"] == "Ford"
    assert "id" not in second


@pytest.mark.parametrize(
    "line",
    ['{"text": "Tesla jumps", "target": "Tesla"', '{"text": "Tesla jumps"} trailing', "{AAPL} jumps 5%"],
)
def test_a_line_that_starts_with_a_brace_but_is_not_json_is_plain_text(line: str) -> None:
    # Plain text keeps working as before, whatever its first character.
    assert parse_line(line) == Request(line)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"txt": "Tesla jumps"}', "unknown key 'txt'"),
        ('{"target": "Tesla"}', '"text" is missing'),
        ('{"text": 5}', '"text" must be a string, not number'),
        ('{"text": "  "}', '"text" is blank'),
        ('{"text": "Tesla jumps", "target": ""}', '"target" is blank'),
        ('{"text": "Tesla jumps", "target": "   "}', '"target" is blank'),
        ('{"text": "Tesla jumps", "target": "\\u200b\\ufeff"}', '"target" is blank'),
        ('{"text": "Tesla jumps", "target": 3}', '"target" must be a string'),
        ('{"text": "Tesla jumps", "target": ["Tesla"]}', "not array"),
        ('{"text": "Tesla jumps", "target": {"name": "Tesla"}}', "not object"),
        ('{"text": "Tesla jumps", "target": true}', "not boolean"),
        # Valid JSON that no tokeniser or JSON writer can take back: refused per line.
        ('{"text": "abc \\ud800 def"}', '"text" holds a lone surrogate'),
        ('{"text": "Tesla jumps", "target": "\\udc00"}', '"target" holds a lone surrogate'),
        ('{"text": "Tesla jumps", "id": NaN}', "NaN is not JSON"),
        ('{"text": "Tesla jumps", "id": -Infinity}', "-Infinity is not JSON"),
        ('{"text": "Tesla jumps", "id": 1e999}', "is not a number JSON can write back"),
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper"),
    ],
)
def test_bad_requests_say_what_is_wrong(line: str, needle: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_line(line)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_text_with_nan_that_is_not_json_stays_plain_text() -> None:
    line = '{"eps": NaN} in Acme report, shares fall'
    assert parse_line(line) == Request(line)


def test_find_span_is_whole_word_case_insensitive_and_apostrophe_blind() -> None:
    assert find_span("Lowe\u2019s beats estimates", "Lowe's") == "Lowe\u2019s"
    assert find_span("TESLA jumps", "Tesla") == "TESLA"
    assert find_span("Teslas everywhere", "Tesla") is None
    assert find_span("$TSLA soars", "$TSLA") == "$TSLA"


def test_find_span_takes_any_whitespace_between_a_targets_words() -> None:
    assert find_span("Bank of  America slumps", "Bank of America") == "Bank of  America"
    assert find_span("the\u00a0Dow falls", "The Dow") == "the\u00a0Dow"
    assert find_span("the Dowry", "the Dow") is None


# -- target resolution --------------------------------------------------------------------


def _resolve(resolver: TargetResolver, text: str, target: str) -> ResolvedTarget:
    return resolver.resolve(text, target, resolver.link(text))


@pytest.mark.parametrize("target", ["\u200bFord", "Ford\ufeff", "\u2066Ford\u2069", "Fo\u00adrd"])
def test_invisible_characters_in_a_target_do_not_hide_its_mention(
    resolver: TargetResolver, target: str
) -> None:
    # Pasted from a spreadsheet or a web page: zero-width spaces, a BOM, bidi isolates or a
    # soft hyphen. Kept, the target was not found and was read as a second segment.
    request = parse_line(json.dumps({"text": TESLA_FORD, "target": target}))
    assert request is not None and request.target == "Ford"
    assert _resolve(resolver, TESLA_FORD, request.target) == ResolvedTarget("Ford", "F")


@pytest.mark.parametrize(
    ("text", "target", "mention", "ticker"),
    [
        # a mention as written, and a ticker resolved to the company's mention
        (TESLA_FORD, "Ford", "Ford", "F"),
        (TESLA_FORD, "tesla", "Tesla", "TSLA"),
        (TESLA_FORD, "TSLA", "Tesla", "TSLA"),
        (TESLA_FORD, "$TSLA", "Tesla", "TSLA"),
        (BERKSHIRE, "BRK.B", "Berkshire Hathaway", "BRK.B"),
        (BERKSHIRE, "BRK-B", "Berkshire Hathaway", "BRK.B"),
        (BERKSHIRE, "BRK.A", "Berkshire Hathaway", "BRK.B"),  # another share class
        (BERKSHIRE, "Berkshire", "Berkshire", "BRK.B"),
        (BERKSHIRE, "Occidental", "Occidental", "OXY"),
        ("Google parent beats estimates", "Alphabet", "Google parent", "GOOGL"),
        ("Google parent beats estimates", "GOOG", "Google parent", "GOOGL"),
        # any span the linker does not take for a company: scored as written, no ticker
        (NO_COMPANY, "OPEC", "OPEC", None),
        (NO_COMPANY, "oil", "Oil", None),
        ("The Dow fell 500 points as yields rose", "Dow", "Dow", None),
        ("Apple harvest hit by frost in Washington", "apple", "Apple", None),
        ("Acme Robotics raises $40 million", "Acme Robotics", "Acme Robotics", None),
        # absent from the text: a universe company keeps its ticker, anything else does not
        (NO_COMPANY, "AAPL", "Apple", "AAPL"),
        (NO_COMPANY, "Bitcoin", "Bitcoin", None),
    ],
)
def test_targets_resolve_to_the_mention_and_the_universe_ticker(
    resolver: TargetResolver, text: str, target: str, mention: str, ticker: str | None
) -> None:
    named = target not in ("AAPL", "Bitcoin")  # the last two: the text does not name them
    assert _resolve(resolver, text, target) == ResolvedTarget(mention, ticker, in_text=named)


# -- one chunk, one model call -------------------------------------------------------------


def _scorer(model: Path, entities: bool = False) -> tuple[ChunkScorer, list[str], list[str]]:
    from pipeline.score.classifier import SentimentClassifier

    clf = SentimentClassifier.load(model, device="cpu", precision="fp32", batch_size=4)
    calls: list[str] = []
    warnings: list[str] = []
    for name in ("predict", "predict_targets"):
        method = getattr(clf, name)

        def counted(*args, _method=method, _name=name, **kwargs):
            calls.append(_name)
            return _method(*args, **kwargs)

        object.__setattr__(clf, name, counted)
    scorer = ChunkScorer(clf, lambda: load_universe("sp500"), entities=entities, warn=warnings.append)
    return scorer, calls, warnings


@pytest.mark.slow
def test_a_target_aware_model_scores_a_chunk_in_one_call_each_company_for_itself(aware_model: Path) -> None:
    from pipeline.score.classifier import SentimentClassifier

    scorer, calls, warnings = _scorer(aware_model, entities=True)
    chunk = [
        TESLA_FORD,
        json.dumps({"text": TESLA_FORD, "target": "Ford"}),
        json.dumps({"text": BERKSHIRE, "target": "BRK.B"}),
        NO_COMPANY,
        "",
        json.dumps({"text": NO_COMPANY, "target": "OPEC"}),
    ]
    out = [json.loads(line) for line in scorer.score(chunk, first_line=1)]
    assert calls == ["predict_targets"] and warnings == []
    assert len(out) == len(chunk) and out[4] == {}

    clf = SentimentClassifier.load(aware_model, device="cpu", precision="fp32")
    whole = clf.predict([TESLA_FORD])[0]
    tesla, ford = clf.predict_targets([TESLA_FORD, TESLA_FORD], ["Tesla", "Ford"])
    assert out[0]["score"] == pytest.approx(whole.score, abs=1e-5)
    assert [e["ticker"] for e in out[0]["entities"]] == ["TSLA", "F"]
    assert out[0]["entities"][0]["score"] == pytest.approx(tesla.score, abs=1e-5)
    assert out[0]["entities"][1]["score"] == pytest.approx(ford.score, abs=1e-5)
    # each company scored for itself, not copied from the text
    assert out[0]["entities"][0]["probabilities"] != out[0]["entities"][1]["probabilities"]
    assert out[1]["target"]["mention"] == "Ford" and out[1]["target"]["ticker"] == "F"
    assert out[1]["target"]["probabilities"] == out[1]["entities"][1]["probabilities"]
    assert out[2]["target"]["mention"] == "Berkshire Hathaway" and out[2]["target"]["ticker"] == "BRK.B"
    assert out[3]["entities"] == [] and "target" not in out[3]
    assert out[5]["target"]["ticker"] is None


@pytest.mark.slow
def test_an_article_level_model_gives_each_target_the_texts_tone_and_warns_once(tiny_model: Path) -> None:
    scorer, calls, warnings = _scorer(tiny_model, entities=True)
    chunk = [TESLA_FORD, json.dumps({"text": TESLA_FORD, "target": "Ford"})]
    out = [json.loads(line) for line in scorer.score(chunk, first_line=1)]
    out += [json.loads(line) for line in scorer.score(chunk, first_line=3)]
    assert calls == ["predict", "predict"]
    assert len(warnings) == 1 and "is article-level: per-target labels are the text's tone" in warnings[0]
    for record in out:
        tone = {k: record[k] for k in ("label", "probabilities", "score")}
        assert all({k: e[k] for k in tone} == tone for e in record["entities"])
    assert {k: out[1]["target"][k] for k in ("label", "score")} == {k: out[1][k] for k in ("label", "score")}


def test_bad_lines_give_an_error_object_with_their_number(tiny_model: Path) -> None:
    scorer, _, _ = _scorer(tiny_model)
    lines = ["ok", '{"text": 1}', "", '{"t', '{"txt": "x"}']
    out = [json.loads(line) for line in scorer.score(lines, first_line=11)]
    assert set(out[0]) == {"label", "probabilities", "score"}
    assert out[1]["line"] == 12 and '"text" must be a string' in out[1]["error"]
    assert out[2] == {} and out[4]["line"] == 15
    # Not JSON: plain text, scored as a whole as before.
    assert set(out[3]) == {"label", "probabilities", "score"}
    assert scorer.error_lines == [12, 15]
    assert "2 input line(s) were not valid requests (line 12, 15)" in (scorer.error_summary() or "")


def test_the_universe_is_not_read_for_plain_lines(tiny_model: Path) -> None:
    from pipeline.score.classifier import SentimentClassifier

    def no_universe():
        raise AssertionError("read the universe")

    clf = SentimentClassifier.load(tiny_model, device="cpu", precision="fp32")
    scorer = ChunkScorer(clf, no_universe)
    assert len(scorer.score(["plain", json.dumps({"text": "no target"})], first_line=1)) == 2


# -- the command ----------------------------------------------------------------------------


def test_classify_mixes_plain_and_json_lines_one_output_each(tiny_model: Path, no_database: Path) -> None:
    lines = [
        TESLA_FORD,
        json.dumps({"text": TESLA_FORD, "target": "Ford"}),
        "",
        json.dumps({"text": TESLA_FORD, "target": "TSLA"}),
        json.dumps({"text": NO_COMPANY, "target": "Brent crude"}),
        "Profit warning issued",
    ]
    result, out = classify(tiny_model, lines)
    assert result.exit_code == 0, result.output
    assert len(out) == len(lines) and out[2] == {}
    plain_result, plain = classify(tiny_model, [TESLA_FORD, "", "Profit warning issued"])
    assert plain_result.exit_code == 0
    # plain lines keep their output, whatever shares their chunk
    for got, want in ((out[0], plain[0]), (out[5], plain[2])):
        assert set(got) == {"label", "probabilities", "score"}
        assert got["label"] == want["label"] and got["score"] == pytest.approx(want["score"], abs=1e-5)
    assert {k: out[1][k] for k in ("label", "score")} == {k: out[0][k] for k in ("label", "score")}
    assert out[1]["target"]["mention"] == "Ford" and out[1]["target"]["ticker"] == "F"
    assert set(out[1]["target"]) == {"mention", "ticker", "in_text", "label", "probabilities", "score"}
    assert out[1]["target"]["in_text"] is True
    assert out[4]["target"]["in_text"] is False  # "Brent crude" is not in that text
    assert (out[3]["target"]["mention"], out[3]["target"]["ticker"]) == ("Tesla", "TSLA")
    assert (out[4]["target"]["mention"], out[4]["target"]["ticker"]) == ("Brent crude", None)
    assert "is article-level" in result.stderr and len(result.stderr.strip().splitlines()) <= 2


def test_classify_entities_with_a_target_aware_model(aware_model: Path, no_database: Path) -> None:
    lines = [
        TESLA_FORD,
        json.dumps({"text": BERKSHIRE}),
        NO_COMPANY,
        "",
        "Stocks making the biggest moves premarket: Amazon, Alphabet, Apple, Intel & more",
    ]
    result, out = classify(aware_model, lines, "--entities")
    assert result.exit_code == 0, result.output
    assert "article-level" not in result.stderr
    assert len(out) == len(lines) and out[3] == {}
    tesla, ford = out[0]["entities"]
    assert (tesla["ticker"], tesla["name"], tesla["mention"]) == ("TSLA", "Tesla, Inc.", "Tesla")
    assert (ford["ticker"], ford["mention"]) == ("F", "Ford")
    assert tesla["relevance"] > ford["relevance"] > 0
    assert set(tesla) == {"ticker", "name", "mention", "relevance", "label", "probabilities", "score"}
    assert tesla["probabilities"] != ford["probabilities"]
    assert [(e["ticker"], e["mention"]) for e in out[1]["entities"]] == [
        ("BRK.B", "Berkshire Hathaway"),
        ("OXY", "Occidental"),
    ]
    assert out[2]["entities"] == []
    assert [e["ticker"] for e in out[4]["entities"]] == ["AMZN", "GOOGL", "AAPL", "INTC"]


def test_classify_bad_lines_are_reported_and_exit_non_zero(tiny_model: Path, no_database: Path) -> None:
    lines = ["fine", '{"text": "x", "target": 7}', '{"text": "Tesla jumps", "target": "  "}', "also fine"]
    result, out = classify(tiny_model, lines)
    assert result.exit_code == 1
    assert len(out) == 4 and "label" in out[0] and "label" in out[3]
    assert out[1]["line"] == 2 and out[2]["line"] == 3
    assert "not valid requests (line 2, 3)" in result.stderr


def test_classify_warns_about_lines_that_look_like_broken_requests(tiny_model: Path, no_database: Path):
    lines = [
        '{"text": "Tesla jumps", "target": "Tesla"',  # the closing brace lost
        json.dumps({"text": NO_COMPANY, "target": "Microsoft"}),  # a company the text never names
        "{AAPL} jumps 5%",
    ]
    result, out = classify(tiny_model, lines)
    assert result.exit_code == 0, result.output  # still scored: a text may start with a brace
    assert "target" not in out[0] and "target" not in out[2]
    assert out[1]["target"]["ticker"] == "MSFT" and out[1]["target"]["in_text"] is False
    warning = [line for line in result.stderr.splitlines() if "not JSON" in line]
    assert warning == [
        "finsent classify: warning: 2 line(s) start with { but are not JSON (line 1, 3): scored as "
        'plain text, with no "target"; fix the JSON to make such a line a request'
    ]
    plain, _ = classify(tiny_model, ["Tesla jumps", json.dumps({"text": "Tesla jumps"})])
    assert plain.exit_code == 0 and "not JSON" not in plain.stderr


def test_classify_reads_the_configured_watchlist(tiny_model: Path, no_database: Path, monkeypatch) -> None:
    watchlist = no_database / "watchlist.csv"
    watchlist.write_text("ticker,name,aliases\nVLTA,Voltara Motors Inc.,Voltara\n")
    monkeypatch.setenv("FINSENT_WATCHLIST_PATH", str(watchlist))
    lines = [json.dumps({"text": "Voltara recalls 40,000 vans; Ford unaffected", "target": "VLTA"})]
    result, out = classify(tiny_model, lines, "--entities")
    assert result.exit_code == 0, result.output
    assert (out[0]["target"]["mention"], out[0]["target"]["ticker"]) == ("Voltara", "VLTA")
    assert [e["ticker"] for e in out[0]["entities"]] == ["VLTA", "F"]


def test_classify_bad_universe_is_one_line(tiny_model: Path, no_database: Path, monkeypatch) -> None:
    monkeypatch.setenv("FINSENT_UNIVERSE", str(no_database / "missing.csv"))
    result, _ = classify(tiny_model, [json.dumps({"text": TESLA_FORD, "target": "Ford"})])
    assert result.exit_code == 1
    assert "missing.csv does not exist" in result.stderr
