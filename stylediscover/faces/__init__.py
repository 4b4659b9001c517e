"""The faces domain: a procedural 64 px face with 13 independent factors, 7 of them local."""
