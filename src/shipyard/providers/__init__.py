"""Infrastructure providers, one package each, independent of one another."""
