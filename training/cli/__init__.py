"""What every command shares: the error contract and flag types (common), and the --model flags of the analysis
commands (model_flags). Only command modules import this package."""
