"""Developer tools shipped with the repository (not deployed services)."""
