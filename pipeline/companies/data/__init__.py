"""Bundled company lists (CSV, the watchlist format): see docs/companies.md."""
