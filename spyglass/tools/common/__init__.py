"""What every data tool shares: file loading (`frames`), per-column statistics (`stats`,
`memo`), value patterns (`patterns`), statistical tests (`significance`), the tool and agent
types and the agent loop (`toolkit`), the common report (`report`) and the result-card
records (`cards`)."""
