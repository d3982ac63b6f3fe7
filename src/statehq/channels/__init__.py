"""Channel adapters: turn a channel's input into :class:`~statehq.flows.Inbound` messages
and render the engine's channel-neutral replies for it."""
