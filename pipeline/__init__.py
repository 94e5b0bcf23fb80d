"""FinSent: financial news sentiment monitoring pipeline.

Everything here is usable without Airflow; the DAGs in ``dags/`` are thin wrappers.
Importing this package is cheap: nothing connects, loads a model or reads settings.
"""

__version__ = "0.1.0"
