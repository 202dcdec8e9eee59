"""Flood control: readings as time series, warning levels, rain gauges and signals, scenarios, closures and the
nearest resources, for the commander's board, the API and the warning feeds. Flask-free."""
