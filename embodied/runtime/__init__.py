"""The runtime: episodes, evaluation, sensing, library growth and verification: where planners, skills and a
robot meet. It never imports a training module."""
