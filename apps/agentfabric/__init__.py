"""AgentFabric: a Gradio app to build an agent by chatting with a builder agent."""
