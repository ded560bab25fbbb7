"""The local web app (`embodied serve`): runs, evaluations and the skill library in a browser."""
