"""PAR, ranking, and scoring of large image sets."""
