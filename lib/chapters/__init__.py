"""Each chapter's protocol, recipes and the paper's numbers, one module per chapter."""
