-- Runs once, when the postgres volume is first created: FinSent's own database next to
-- Airflow's metadata database (the same server, separate databases).
CREATE DATABASE finsent OWNER airflow;
