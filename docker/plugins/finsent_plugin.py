"""Loads FinSent's Airflow plugin (pages under /finsent, a "FinSent" navigation entry).

Airflow imports every module in its plugins folder and registers the AirflowPlugin
subclasses it finds there; the plugin itself lives in the package (pipeline.airflow.plugin).
"""

from pipeline.airflow.plugin import FinSentPlugin

__all__ = ["FinSentPlugin"]
