"""The Airflow front door: operators, triggers, links and provider info; a thin adapter over the engine."""
