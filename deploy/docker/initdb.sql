-- Optuna's database beside MLflow's (each keeps its own alembic_version table); run once by the postgres image.
CREATE DATABASE optuna OWNER mlflow;
