"""The analyst's screen: a server-rendered web app over the same database and queries.

``create_app`` builds it; ``finsent serve`` runs it on its own and the Airflow plugin
(:mod:`pipeline.airflow.plugin`) mounts it in Airflow's API server.
"""

from pipeline.web.app import create_app

__all__ = ["create_app"]
