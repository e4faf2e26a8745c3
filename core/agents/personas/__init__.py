"""Packaged persona files (Markdown system prompts with YAML front matter); see ``docs/agents.md``."""
