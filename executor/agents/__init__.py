"""The agents this executor can run, chosen by the start request's ``agent`` object (``kind`` first)."""

from __future__ import annotations

from typing import Any

from executor.agents import openai, scripted
from executor.config import OpenAIConfig
from executor.runs import AgentFn


class AgentCatalog:
    def __init__(self, openai_config: OpenAIConfig):
        self.openai_config = openai_config

    def problem(self, spec: dict[str, Any]) -> str | None:
        """What is wrong with an agent spec, or None when ``build`` will accept it."""
        kind = spec.get("kind")
        if kind == "scripted":
            playbook = spec.get("playbook")
            if playbook not in scripted.PLAYBOOKS:
                return f"agent.playbook must be one of {sorted(scripted.PLAYBOOKS)}"
            return None
        if kind == "openai":
            return openai.check_spec(spec)
        return 'agent.kind must be "scripted" or "openai"'

    def build(self, spec: dict[str, Any]) -> AgentFn:
        if spec["kind"] == "openai":
            return openai.OpenAIAgent(self.openai_config, spec)
        return scripted.PLAYBOOKS[spec["playbook"]]
