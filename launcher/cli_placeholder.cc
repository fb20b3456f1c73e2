// Replaced by the subcommand sources.
