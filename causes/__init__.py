"""Why incidents happen: counterfactual reruns of the world from saved state (``causes.counterfactual``)."""
