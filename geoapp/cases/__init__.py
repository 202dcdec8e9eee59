"""City management cases (数字化城管): the workflow, routing to the grid, indicators, public reports, hotline import."""
