"""The network: max-min flow sharing, collectives as routed flows, topology summaries."""
