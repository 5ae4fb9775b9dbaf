"""The discrete-event model (SimPy): schedule op lists, the engine, drawn expert loads on the fabric."""
