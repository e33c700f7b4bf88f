"""Classical restorations as pure functions of a problem (operator, observation, noise level)."""
