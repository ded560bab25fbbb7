"""The agent: planners, language-model backends, episode runner, evaluation and the CLI."""

__version__ = "0.1.0"
