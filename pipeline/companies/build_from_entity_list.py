"""Build a universe CSV for another market from SEntFiN's entity list (Indian listed
companies: NSE symbol and the name variants the annotators saw in headlines).

    python -m pipeline.companies.build_from_entity_list ../shared/data/sentfin/entity_list.csv india.csv
    FINSENT_UNIVERSE=india.csv finsent feeds relink

The output is in the watchlist's CSV format (see docs/companies.md). Entities that are
sectors or themes rather than companies ("healthcare stocks") are left out: a company has
a legal name ("... Ltd.") among its variants. The entity list is SEntFiN
1.0's (Sinha, Kedas, Kumar, Malo 2022; MIT licence): the file written says so.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
from pathlib import Path

from pipeline.companies.watchlist import TICKER_RE

log = logging.getLogger(__name__)

# A company's variants include its legal name; a theme's ("Mid-cap funds") do not. The
# annotators wrote suffixes in any case ("Infosys ltd."); the words that are also ordinary
# English ("bank stocks") and the European forms count only as written in a name.
LEGAL_NAME = re.compile(
    r"\b(?:(?i:ltd|limited|corp|corporation|inc|plc)|Co|Bank|Industries|Company|AG|SA|KGaA|AB|NV)\b\.?"
)
HEADER = ("ticker", "name", "aliases", "country", "exchange")
NOTICE = (
    "# Indian listed companies from the SEntFiN 1.0 entity list (Sinha, Kedas, Kumar, Malo 2022;\n"
    "# MIT licence, (c) 2021 the authors), built by pipeline.companies.build_from_entity_list.\n"
)


def company_rows(entity_list: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    """(rows of the universe CSV, symbols left out and why)."""
    rows: list[tuple[str, ...]] = []
    skipped: list[str] = []
    seen: set[str] = set()
    with entity_list.open(encoding="utf-8-sig", newline="") as f:
        for record in csv.DictReader(f):
            symbol = (record.get("Symbol") or "").strip().upper()
            variants = [v.strip() for v in (record.get("Entity") or "").split(",")]
            # A name has a capital or starts with a digit ("eClerx", "3i Infotech", "20 Microns");
            # "healthcare stocks" does not.
            names = [
                v
                for v in dict.fromkeys(variants)
                if v and v.upper() != symbol and (v[0].isdigit() or any(c.isupper() for c in v))
            ]
            # "Summit Securities Ltd.- Old": a former listing, named like the current one.
            names = [v.removesuffix("- Old").strip() for v in names]
            if not TICKER_RE.match(symbol):
                skipped.append(f"{symbol!r}: not a ticker")
                continue
            if not any(LEGAL_NAME.search(v) for v in names):
                skipped.append(f"{symbol}: a sector or theme, not a company")
                continue
            if symbol in seen:
                skipped.append(f"{symbol}: listed twice")
                continue
            seen.add(symbol)
            rows.append((symbol, names[0], "|".join(dict.fromkeys(names[1:])), "IN", "NSE"))
    return rows, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("entity_list", type=Path, help="SEntFiN's entity_list.csv")
    parser.add_argument("output", type=Path, help="universe CSV to write")
    args = parser.parse_args(argv)
    try:
        rows, skipped = company_rows(args.entity_list)
    except (OSError, KeyError, csv.Error) as exc:
        print(f"error: cannot read {args.entity_list}: {exc}", file=sys.stderr)
        return 1
    with args.output.open("w", encoding="utf-8", newline="") as f:
        f.write(NOTICE)
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    print(f"wrote {len(rows)} companies to {args.output} ({len(skipped)} entities left out)")
    for line in skipped:
        log.info("left out %s", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
